"""Django-side factory of WordPress clients: the only place that reads connector + settings."""

import redis
from django.conf import settings

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.hostlimit import HostLimiter

_limiter = None


def host_limiter():
    """The process's HostLimiter (politeness across workers), or None without Redis or with
    WORDPRESS_HOST_CONCURRENCY=0."""
    global _limiter
    if _limiter is None and settings.REDIS_URL and settings.WORDPRESS_HOST_CONCURRENCY > 0:
        _limiter = HostLimiter(
            redis.Redis.from_url(settings.REDIS_URL), settings.WORDPRESS_HOST_CONCURRENCY
        )
    return _limiter


def client_for(connector, **kwargs) -> WordPressClient:
    """A client for ``connector``'s site; keyword arguments override client defaults."""
    kwargs.setdefault("allow_private", settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
    kwargs.setdefault("host_limiter", host_limiter())
    return WordPressClient(connector.site_url, connector.api_key, **kwargs)
