"""The notification tasks celery beat sends (config/settings.py CELERY_BEAT_SCHEDULE); the
worker imports this module through CELERY_IMPORTS. Names keep their notifications.tasks prefix."""

from celery import shared_task

from notifications.alerts import check_stale
from notifications.delivery import resend_pending
from notifications.delivery import send_digests as send


@shared_task(name="notifications.tasks.check", ignore_result=True)
def check() -> int:
    """Stale-data alerts, and deliveries whose task message was lost."""
    resend_pending()
    return check_stale()


@shared_task(name="notifications.tasks.send_digests", ignore_result=True)
def send_digests() -> int:
    return send()
