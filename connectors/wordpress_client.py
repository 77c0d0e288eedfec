"""Django-side factory of WordPress clients: the only place that reads connector + settings."""

from django.conf import settings

from connectors.wordpress.client import WordPressClient


def client_for(connector, **kwargs) -> WordPressClient:
    """A client for ``connector``'s site; keyword arguments override client defaults."""
    kwargs.setdefault("allow_private", settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
    return WordPressClient(connector.site_url, connector.api_key, **kwargs)
