"""The Celery task a push schedules (see push.services.receive)."""

from celery import shared_task


@shared_task(name="push.tasks.run_pushed_sync", bind=True, ignore_result=True, max_retries=120)
def run_pushed_sync(self, connector_id: int) -> str:
    from push.services import start_pushed_sync
    from syncjobs.services import SyncAlreadyRunning

    try:
        return start_pushed_sync(connector_id)
    except SyncAlreadyRunning as exc:
        # The running job may have read the site before the change the push announced:
        # start another incremental as soon as it ends.
        raise self.retry(countdown=2, exc=exc) from None
