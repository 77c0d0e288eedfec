"""Subscribing a site's plugin to pushes (§15.2): telling it this connector's push URL and
secret. The runner calls ensure_subscribed before a sync; the diagnostics call subscribe."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from connectors.wordpress.errors import WordPressError
from push.models import PushChannel

logger = logging.getLogger(__name__)


def push_url(connector) -> str | None:
    """Where the plugin sends this connector's pushes; None without PLATFORM_URL."""
    if not settings.PLATFORM_URL:
        return None
    return settings.PLATFORM_URL.rstrip("/") + reverse("push:receive", args=[connector.pk])


def subscribe(connector, client, *, test: bool = False) -> dict:
    """Give the plugin this connector's push URL and secret (§15.2). With `test`, the plugin
    also sends a test push at once and reports whether it reached us.

    Returns {"supported", "subscribed", "reachable", "error"}; never raises for a site that
    cannot take it (an older plugin, a site down): push is a speed-up, the schedule is the
    safety net.
    """
    channel = PushChannel.for_connector(connector)
    url = push_url(connector)
    if url is None:
        return _subscribe_result(
            channel, False, "PLATFORM_URL is not set: the plugin cannot be told where to push."
        )
    if not channel.enabled:
        return _subscribe_result(channel, False, "Push is off for this connector.")
    try:
        answer = client.subscribe_push(url, channel.secret, test=test)
    except WordPressError as exc:
        supported = getattr(exc, "status_code", None) != 404
        message = str(exc) if supported else "The plugin does not support push (update it)."
        return _subscribe_result(channel, False, message, supported=supported)
    channel.subscribed_url = url
    channel.subscribe_attempted_at = timezone.now()
    channel.subscribe_error = ""
    channel.save(update_fields=["subscribed_url", "subscribe_attempted_at", "subscribe_error"])
    reachable = answer.get("reachable") if test else None
    error = "" if reachable is not False else str(answer.get("error") or "no answer")
    return {"supported": True, "subscribed": True, "reachable": reachable, "error": error}


def _subscribe_result(channel, subscribed, error, *, supported=True) -> dict:
    PushChannel.objects.filter(pk=channel.pk).update(
        subscribed_url="", subscribe_attempted_at=timezone.now(), subscribe_error=error
    )
    return {"supported": supported, "subscribed": subscribed, "reachable": None, "error": error}


# A subscription that failed is tried again after this long (by the next sync), so a site
# whose plugin was updated starts pushing within a day without anyone clicking anything.
RESUBSCRIBE_AFTER = timedelta(days=1)


def ensure_subscribed(connector, client) -> None:
    """Called by the runner before a sync: subscribe the plugin unless it already is (with
    the current URL) or a recent attempt failed. One request, once per connector."""
    url = push_url(connector)
    if url is None:
        return
    channel = PushChannel.for_connector(connector)
    if not channel.enabled or channel.subscribed_url == url:
        return
    attempted = channel.subscribe_attempted_at
    if attempted and timezone.now() - attempted < RESUBSCRIBE_AFTER:
        return
    started = time.monotonic()
    result = subscribe(connector, client)
    logger.info(
        "push subscription of connector %s: %s (%.2fs)",
        connector.pk,
        result,
        time.monotonic() - started,
    )
