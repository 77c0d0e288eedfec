"""Receiving a push: authenticate, reject replays, rate-limit, debounce, and schedule the
sync (push.tasks); the view calls it. See docs/wordpress-sync-api.md §15 (subscribing the
plugin to pushes is push.subscriptions').

A push carries nothing but "this connector's site has changes": the platform answers it by
scheduling the connector's ordinary incremental sync, which reads what changed from the site's
API as a scheduled one does. So a forged or replayed push could at worst cause a sync; the
signature, the replay check and the rate limit keep even that from happening.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connectors.models import Connector
from push.models import PushChannel
from push.tasks import run_pushed_sync

logger = logging.getLogger(__name__)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature both sides compute: HMAC-SHA256 of "{timestamp}." + body, in hex."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# A scheduled pushed sync that has not started this long after its due time is presumed lost
# (the broker was down when it was enqueued, or its task gave up waiting for a long job): the
# next push schedules a new one instead of joining it for ever.
SCHEDULED_GIVE_UP = timedelta(minutes=5)


@dataclass
class Outcome:
    status: int  # the HTTP status the endpoint answers
    message: str
    retry_after: int | None = None


def receive(connector_id: int, timestamp: str, signature: str, body: bytes, now=None) -> Outcome:
    """Decide what a push means; schedules at most one incremental sync per debounce window."""
    now = now or timezone.now()
    channel = (
        PushChannel.objects.select_related("connector").filter(connector_id=connector_id).first()
    )
    # The same answer for "no such connector" and "bad signature", a 404 as for any object
    # of another tenant: the endpoint does not tell a stranger which connector ids exist.
    if channel is None or not signature:
        return Outcome(404, "Unknown connector or invalid signature.")
    expected = sign(channel.secret, timestamp, body)
    if not hmac.compare_digest(expected, signature.strip().lower()):
        return Outcome(404, "Unknown connector or invalid signature.")
    try:
        stamp = Decimal(timestamp)
    except InvalidOperation:
        return Outcome(400, "The timestamp is not a number of seconds.")
    if not stamp.is_finite() or abs(float(stamp) - now.timestamp()) > settings.PUSH_REPLAY_WINDOW:
        return Outcome(
            401,
            f"The timestamp is more than {settings.PUSH_REPLAY_WINDOW} s from the platform's "
            "clock: check the site's clock.",
        )
    try:
        event = json.loads(body or b"{}").get("event")
    except (ValueError, AttributeError):
        return Outcome(400, 'The body is not a JSON object such as {"event": "changes"}.')
    test = event == "test"  # the connection test's round trip (§15.3): never a sync
    with transaction.atomic():
        channel = PushChannel.objects.select_for_update().get(pk=channel.pk)
        # Replay: every accepted push is newer than the last one. A replayed push (or one
        # overtaken by a newer push) is refused; the newer one covers its changes.
        if stamp <= channel.last_timestamp:
            return Outcome(409, "Replayed push: a newer one was already received.")
        window = timedelta(seconds=60)
        if channel.window_started_at is None or now - channel.window_started_at >= window:
            channel.window_started_at, channel.window_count = now, 0
        if channel.window_count >= settings.PUSH_RATE_LIMIT:
            wait = window - (now - channel.window_started_at)
            return Outcome(
                429, "Too many pushes for this connector.", retry_after=int(wait.seconds) + 1
            )
        channel.window_count += 1
        channel.last_timestamp = stamp
        channel.last_received_at = now
        fields = ["window_started_at", "window_count", "last_timestamp", "last_received_at"]
        connector = channel.connector
        if test:
            outcome = Outcome(200, "Reached the platform.")
        elif not channel.enabled:
            outcome = Outcome(202, "Push is off for this connector: ignored.")
        elif connector.status == Connector.Status.PAUSED:
            outcome = Outcome(202, "The connector is paused: ignored.")
        elif channel.sync_due_at is not None and now - channel.sync_due_at < SCHEDULED_GIVE_UP:
            outcome = Outcome(202, "A sync is already scheduled: this push joins it.")
        else:
            channel.sync_due_at = now + timedelta(seconds=settings.PUSH_DEBOUNCE_SECONDS)
            fields.append("sync_due_at")
            transaction.on_commit(lambda: _enqueue(connector.pk), robust=True)
            outcome = Outcome(202, "Incremental sync scheduled.")
        channel.save(update_fields=fields)
    return outcome


def _enqueue(connector_id: int) -> None:
    run_pushed_sync.apply_async((connector_id,), countdown=settings.PUSH_DEBOUNCE_SECONDS)
