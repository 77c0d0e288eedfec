"""Who receives a notification (notify) and queueing its sending: the Celery task
`notifications.tasks.deliver` sends it (notifications.sending) after the deciding transaction
commits; the daily digest and the re-sending of lost deliveries.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from notifications import messages
from notifications.models import (
    Channel,
    Delivery,
    EmailMute,
    Event,
    OrganisationSettings,
    Preference,
    WebhookEndpoint,
)
from notifications.tasks import deliver

logger = logging.getLogger(__name__)


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
    for delivery_id in delivery_ids:
        # robust: a broker that is down must not roll back the sync's bookkeeping; the
        # notifications_check command re-sends deliveries left PENDING.
        transaction.on_commit(lambda pk=delivery_id: deliver.delay(pk), robust=True)


def send_digests(now=None) -> int:
    """Send each admin one mail with the notifications queued for the digest; returns how
    many mails were sent. Runs daily (beat), and on demand with `notifications_check --digest`."""
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
    for delivery_id in ids:
        try:
            deliver.delay(delivery_id)
        except Exception:
            logger.warning("could not re-send notification %s", delivery_id, exc_info=True)
    return len(ids)
