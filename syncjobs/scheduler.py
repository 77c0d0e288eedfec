"""Periodic work run by Celery beat: start due incremental syncs, fail dead jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from connectors.models import Connector
from syncjobs.models import SyncJob
from syncjobs.runner import finish
from syncjobs.services import SyncRefused, start_sync

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 100
# ERROR connectors stay scheduled: a site that was down is retried at its normal pace and
# goes back to ACTIVE by itself. PAUSED ones never are (manual syncs still work).
SCHEDULED_STATUSES = (Connector.Status.ACTIVE, Connector.Status.ERROR)


def dispatch_due(now=None, *, batch_size: int = DISPATCH_BATCH) -> list[SyncJob]:
    """Create an INCREMENTAL job for every due connector and move its next_sync_at on.

    Rows are locked with FOR UPDATE SKIP LOCKED in batches: two beats (or a beat and a manual
    dispatcher) running at once each take different connectors, and a connector locked by one
    is simply left to it. The partial unique index on active jobs is the last line of defence.
    """
    now = now or timezone.now()
    jobs: list[SyncJob] = []
    in_flight = SyncJob.objects.filter(connector=OuterRef("pk"), status__in=SyncJob.ACTIVE_STATUSES)
    while True:
        with transaction.atomic():
            due = list(
                Connector.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status__in=SCHEDULED_STATUSES, next_sync_at__lte=now)
                .exclude(frequency=Connector.Frequency.MANUAL)
                .exclude(Exists(in_flight))
                .order_by("next_sync_at", "pk")[:batch_size]
            )
            for connector in due:
                connector.next_sync_at = connector.compute_next_sync_at(now)
                connector.save(update_fields=["next_sync_at", "updated_at"])
                try:
                    jobs.append(
                        start_sync(
                            connector, SyncJob.Kind.INCREMENTAL, trigger=SyncJob.Trigger.SCHEDULER
                        )
                    )
                except SyncRefused as exc:
                    logger.info("connector %s not dispatched: %s", connector.pk, exc)
        if len(due) < batch_size:
            return jobs


def sweep_stale(now=None) -> int:
    """Mark FAILED every RUNNING job whose worker stopped beating; returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS)
    stale = SyncJob.objects.filter(status=SyncJob.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    swept = 0
    for job in stale.select_related("connector"):
        last = job.heartbeat_at or job.started_at
        when = timezone.localtime(last).strftime("%Y-%m-%d %H:%M:%S %Z") if last else "never"
        message = (
            f"The worker running this sync stopped responding (last heartbeat {when}), so the "
            "job was marked failed. Records processed before were kept; run the sync again."
        )
        if finish(job, SyncJob.Status.FAILED, message):
            swept += 1
            logger.warning("swept stale sync job %s", job.pk)
    return swept
