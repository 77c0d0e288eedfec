"""Sending one notification (send), which the Celery task `notifications.tasks.deliver` calls.

Email goes through Django's email framework (EMAIL_* settings); a webhook is a JSON POST
with a Slack-compatible `text`, signed with HMAC-SHA256 of the body, made with httpx through
the WordPress client's outbound guard, so an organisation admin cannot aim it at the
platform's own network. Every attempt's outcome is kept on the Delivery row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from connectors.wordpress.errors import WordPressError
from connectors.wordpress.guard import GuardedTransport, OutboundGuard
from notifications.messages import absolute
from notifications.models import Channel, Delivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Association-Signature"
WEBHOOK_TIMEOUT = 10.0


class DeliveryFailed(Exception):
    """A send that did not work; the message says why in words."""


def send(delivery_id: int, *, final: bool) -> bool | None:
    """One attempt at a PENDING delivery: True sent, False failed (PENDING again for a retry,
    or FAILED when ``final``), None when there was nothing to do (already sent, or taken by
    another worker). The row stays locked during the attempt so a redelivered task message
    cannot send it twice."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=delivery_id, status=Delivery.Status.PENDING)
            .select_related("webhook")
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        try:
            if delivery.channel == Channel.EMAIL:
                send_email(delivery.recipient, delivery.subject, delivery.body)
            else:
                send_webhook(delivery)
        except DeliveryFailed as exc:
            delivery.result = f"Attempt {delivery.attempts}: {exc}"
            if final:
                delivery.status = Delivery.Status.FAILED
            delivery.save(update_fields=["attempts", "result", "status"])
            logger.warning("notification delivery %s failed: %s", delivery.pk, exc)
            return False
        delivery.status = Delivery.Status.SENT
        delivery.sent_at = timezone.now()
        delivery.result = delivery.result if delivery.channel == Channel.WEBHOOK else "Accepted"
        delivery.save(update_fields=["attempts", "result", "status", "sent_at"])
        return True


def send_email(recipient: str, subject: str, body: str) -> None:
    try:
        send_mail(subject, body, None, [recipient], fail_silently=False)
    except Exception as exc:  # smtplib, socket and backend errors alike
        raise DeliveryFailed(
            f"The mail server refused or could not be reached ({type(exc).__name__}: {exc})."
        ) from exc


def webhook_payload(delivery: Delivery) -> bytes:
    job_url = None
    if delivery.job_id and delivery.connector_id:
        job_url = absolute(delivery.job.get_absolute_url())
    payload = {
        "text": f"{delivery.subject}\n{delivery.body}",
        "event": delivery.event,
        "subject": delivery.subject,
        "organisation": delivery.organisation.slug,
        "connector": {"id": delivery.connector_id, "name": delivery.connector_name},
        "job": {"id": delivery.job_id, "url": job_url} if delivery.job_id else None,
        "sent_at": timezone.now().isoformat(),
    }
    return json.dumps(payload).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def guard() -> OutboundGuard:
    return OutboundGuard(allow_private=settings.WEBHOOK_ALLOW_PRIVATE_HOSTS)


def check_webhook_url(url: str) -> None:
    """Raise WordPressError (BlockedAddress, SiteUnreachable) for a URL the guard refuses."""
    guard().check_url(url)


def send_webhook(delivery: Delivery) -> None:
    endpoint = delivery.webhook
    if endpoint is None:
        raise DeliveryFailed("The webhook was deleted before the notification could be sent.")
    body = webhook_payload(delivery)
    outbound = guard()
    try:
        outbound.check_url(endpoint.url)
        with httpx.Client(
            transport=GuardedTransport(outbound),
            timeout=WEBHOOK_TIMEOUT,
            follow_redirects=False,  # a redirect could lead past the guard's check
        ) as client:
            response = client.post(
                endpoint.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: signature(endpoint.secret, body),
                    "User-Agent": "AssociationApp-Notifications/1",
                },
            )
    except WordPressError as exc:
        raise DeliveryFailed(str(exc).replace("site URL", "webhook URL")) from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(
            f"The webhook receiver could not be reached ({type(exc).__name__}: {exc})."
        ) from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"The webhook receiver answered HTTP {response.status_code} "
            f"({response.text[:200].strip() or 'no body'})."
        )
    delivery.result = f"HTTP {response.status_code}"
