"""The Celery task a push schedules (see push.services.receive): start the connector's
incremental sync, retried while another job runs."""

from celery import shared_task
from django.db import transaction

from connectors.models import Connector
from push.models import PushChannel
from syncjobs.models import SyncJob
from syncjobs.services import SyncAlreadyRunning, SyncRefused, start_sync


@shared_task(name="push.tasks.run_pushed_sync", bind=True, ignore_result=True, max_retries=120)
def run_pushed_sync(self, connector_id: int) -> str:
    try:
        return start_pushed_sync(connector_id)
    except SyncAlreadyRunning as exc:
        # The running job may have read the site before the change the push announced:
        # start another incremental as soon as it ends.
        raise self.retry(countdown=2, exc=exc) from None


def start_pushed_sync(connector_id: int) -> str:
    """Start the incremental sync a push scheduled; returns what happened, in words.

    Raises SyncAlreadyRunning while another job runs (the task retries: the changes the push
    announced may be newer than what the running job reads)."""
    channel = PushChannel.objects.select_related("connector").filter(connector_id=connector_id)
    channel = channel.first()
    if channel is None:
        return "connector gone"
    connector = channel.connector
    if not channel.enabled or connector.status == Connector.Status.PAUSED:
        PushChannel.objects.filter(pk=channel.pk).update(sync_due_at=None)
        return "push off or connector paused"
    try:
        # Cleared as the job is created: a push arriving from now on is newer than what
        # this job can be sure to read, so it schedules the next one.
        with transaction.atomic():
            PushChannel.objects.filter(pk=channel.pk).update(sync_due_at=None)
            job = start_sync(connector, SyncJob.Kind.INCREMENTAL, trigger=SyncJob.Trigger.PUSH)
    except SyncAlreadyRunning:
        raise
    except SyncRefused as exc:
        return str(exc)
    return f"job {job.pk}"
