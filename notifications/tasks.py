"""Celery tasks of the notifications: delivery with retries, the periodic checks, the digest."""

from celery import shared_task
from django.conf import settings


@shared_task(bind=True, name="notifications.tasks.deliver", acks_late=True)
def deliver(self, delivery_id: int) -> None:
    """Send one notification; a failed attempt is retried with exponential backoff
    (NOTIFICATIONS_RETRY_BASE_SECONDS × 2^n), the last failure is recorded as FAILED."""
    from notifications.delivery import send

    retries = settings.NOTIFICATIONS_MAX_RETRIES
    final = self.request.retries >= retries
    if send(delivery_id, final=final) is False and not final:
        raise self.retry(
            countdown=settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2**self.request.retries,
            max_retries=retries,
        )


@shared_task(name="notifications.tasks.check", ignore_result=True)
def check() -> int:
    """Stale-data alerts, and deliveries whose task message was lost."""
    from notifications.alerts import check_stale
    from notifications.delivery import resend_pending

    resend_pending()
    return check_stale()


@shared_task(name="notifications.tasks.send_digests", ignore_result=True)
def send_digests() -> int:
    from notifications.delivery import send_digests as send

    return send()
