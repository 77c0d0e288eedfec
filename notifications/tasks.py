"""The Celery task that sends one notification, with retries (what beat sends is in
notifications.periodic)."""

from celery import shared_task
from django.conf import settings

from notifications.sending import send


@shared_task(bind=True, name="notifications.tasks.deliver", acks_late=True)
def deliver(self, delivery_id: int) -> None:
    """Send one notification; a failed attempt is retried with exponential backoff
    (NOTIFICATIONS_RETRY_BASE_SECONDS × 2^n), the last failure is recorded as FAILED."""
    retries = settings.NOTIFICATIONS_MAX_RETRIES
    final = self.request.retries >= retries
    if send(delivery_id, final=final) is False and not final:
        raise self.retry(
            countdown=settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2**self.request.retries,
            max_retries=retries,
        )
