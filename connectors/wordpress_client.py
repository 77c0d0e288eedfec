"""Django-side factory of WordPress clients: the only place that reads connector + settings."""

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.hostlimit import HostLimiter

_limiter = None


def host_limiter():
    """The process's HostLimiter (politeness across workers), or None without Redis or with
    WORDPRESS_HOST_CONCURRENCY=0."""
    global _limiter
    if _limiter is None and settings.REDIS_URL and settings.WORDPRESS_HOST_CONCURRENCY > 0:
        _limiter = HostLimiter(
            limiter_redis(settings.REDIS_URL), settings.WORDPRESS_HOST_CONCURRENCY
        )
    return _limiter


def limiter_redis(url: str) -> redis.Redis:
    """The limiter's Redis client: one try, short timeouts. redis-py's default retries with
    backoff (about 4 s a command) would hold every WordPress request some 13 s while Redis is
    down, where the limiter means to fail open and send the request at once."""
    return redis.Redis.from_url(
        url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=1, socket_timeout=2
    )


def client_for(connector, **kwargs) -> WordPressClient:
    """A client for ``connector``'s site; keyword arguments override client defaults."""
    kwargs.setdefault("allow_private", settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
    kwargs.setdefault("host_limiter", host_limiter())
    return WordPressClient(connector.site_url, connector.api_key, **kwargs)
