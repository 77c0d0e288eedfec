"""Sending notifications: who receives one (notify), and the sending itself (send), which
the Celery task `notifications.tasks.deliver` calls after the deciding transaction commits.

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
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from connectors.wordpress.errors import WordPressError
from connectors.wordpress.guard import GuardedTransport, OutboundGuard
from notifications.models import (
    Channel,
    Delivery,
    EmailMute,
    Event,
    OrganisationSettings,
    Preference,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Association-Signature"
WEBHOOK_TIMEOUT = 10.0


def enabled(organisation_id, event: str, channel: str) -> bool:
    found = Preference.objects.filter(
        organisation_id=organisation_id, event=event, channel=channel
    ).first()
    return found.enabled if found else True


def email_recipients(organisation_id):
    """The organisation's admins who have an address and did not mute their email."""
    muted = EmailMute.objects.filter(organisation_id=organisation_id).values("user_id")
    return [
        membership.user
        for membership in Membership.objects.filter(
            organisation_id=organisation_id,
            role=Membership.Role.ADMIN,
            user__is_active=True,
        )
        .exclude(user__email="")
        .exclude(user_id__in=muted)
        .select_related("user")
        .order_by("user_id")
    ]


def notify(connector, event, job, subject, body, *, settings: OrganisationSettings) -> list:
    """Record one Delivery per recipient of ``event`` and send them after commit."""
    organisation_id = connector.organisation_id
    common = {
        "organisation_id": organisation_id,
        "connector": connector,
        "connector_name": connector.name,
        "job": job,
        "event": event,
        "subject": subject[:300],
        "body": body,
    }
    created = []
    if enabled(organisation_id, event, Channel.EMAIL):
        status = Delivery.Status.DIGEST if settings.daily_digest else Delivery.Status.PENDING
        for user in email_recipients(organisation_id):
            created.append(
                Delivery.objects.create(
                    channel=Channel.EMAIL, recipient=user.email, user=user, status=status, **common
                )
            )
    if enabled(organisation_id, event, Channel.WEBHOOK):
        for endpoint in WebhookEndpoint.objects.filter(organisation_id=organisation_id):
            created.append(
                Delivery.objects.create(
                    channel=Channel.WEBHOOK, recipient=endpoint.url, webhook=endpoint, **common
                )
            )
    enqueue([d.pk for d in created if d.status == Delivery.Status.PENDING])
    return created


def enqueue(delivery_ids) -> None:
    from notifications.tasks import deliver

    for delivery_id in delivery_ids:
        # robust: a broker that is down must not roll back the sync's bookkeeping; the
        # notifications_check command re-sends deliveries left PENDING.
        transaction.on_commit(lambda pk=delivery_id: deliver.delay(pk), robust=True)


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
        from notifications.messages import absolute

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


def send_digests(now=None) -> int:
    """Send each admin one mail with the notifications queued for the digest; returns how
    many mails were sent. Runs daily (beat), and on demand with `notifications_check --digest`."""
    from notifications import messages

    now = now or timezone.now()
    sent = 0
    queued = (
        Delivery.objects.filter(status=Delivery.Status.DIGEST)
        .values_list("organisation_id", "recipient")
        .distinct()
    )
    for organisation_id, recipient in sorted(set(queued)):
        with transaction.atomic():
            items = list(
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(
                    organisation_id=organisation_id,
                    recipient=recipient,
                    status=Delivery.Status.DIGEST,
                )
                .select_related("organisation", "user")
                .order_by("created_at", "id")
            )
            if not items:
                continue
            organisation = items[0].organisation
            subject, body = messages.digest(organisation, items)
            digest = Delivery.objects.create(
                organisation=organisation,
                event=Event.DIGEST,
                channel=Channel.EMAIL,
                recipient=recipient,
                user=items[0].user,
                subject=subject[:300],
                body=body,
            )
            Delivery.objects.filter(pk__in=[d.pk for d in items]).update(
                status=Delivery.Status.DIGESTED, sent_at=now, result=f"In digest #{digest.pk}"
            )
            OrganisationSettings.objects.filter(organisation_id=organisation_id).update(
                digest_sent_at=now
            )
            enqueue([digest.pk])
            sent += 1
    return sent


def resend_pending(older_than_seconds: int = 600) -> int:
    """Re-send deliveries still PENDING long after they were created (their task message was
    lost: broker down at commit, Redis restarted). send() locks the row, so a message that
    was only late finds it SENT and does nothing."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        # attempts=0: one that failed an attempt waits for its retry's countdown.
        Delivery.objects.filter(
            status=Delivery.Status.PENDING, created_at__lt=cutoff, attempts=0
        ).values_list("pk", flat=True)[:500]
    )
    from notifications.tasks import deliver

    for delivery_id in ids:
        try:
            deliver.delay(delivery_id)
        except Exception:
            logger.warning("could not re-send notification %s", delivery_id, exc_info=True)
    return len(ids)
