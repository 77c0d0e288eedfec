"""System check: notification mails and webhooks link to the job and the connector with
SITE_URL in front; without it they carry bare paths, which no mail client can open."""

from django.conf import settings
from django.core import checks


@checks.register()
def site_url_for_links(app_configs=None, **kwargs):
    if settings.SITE_URL or settings.DEBUG:
        return []
    return [
        checks.Warning(
            "SITE_URL is not set: links in notification mails and webhooks will be paths "
            "without the dashboard's address, which mail clients cannot open.",
            hint="Set SITE_URL to the dashboard's public address, e.g. "
            "https://connectors.example.org (see .env.example).",
            id="notifications.W001",
        )
    ]
