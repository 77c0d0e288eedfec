"""Periodic work run by Celery beat: start due reconciliations and incremental syncs, fail
dead jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Case, Exists, ExpressionWrapper, OuterRef, Q, Value, When
from django.utils import timezone

from connectors.models import Connector
from records.mapping import MAPPING_REVISION
from syncjobs.models import SyncJob
from syncjobs.runner import finish
from syncjobs.services import (
    NothingToReconcile,
    SyncRefused,
    enqueue_job,
    start_sync,
)
from syncjobs.tasks import run_sync_job

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 100
# ERROR connectors stay scheduled: a site that was down is retried at its normal pace and
# goes back to ACTIVE by itself. PAUSED ones never are (manual syncs still work).
SCHEDULED_STATUSES = (Connector.Status.ACTIVE, Connector.Status.ERROR)


def _scheduled(now):
    """Connectors the scheduler may start a job for now: scheduled, none in flight."""
    in_flight = SyncJob.objects.filter(connector=OuterRef("pk"), status__in=SyncJob.ACTIVE_STATUSES)
    return (
        Connector.objects.filter(status__in=SCHEDULED_STATUSES)
        .exclude(frequency=Connector.Frequency.MANUAL)
        .exclude(Exists(in_flight))
    )


RECONCILE_DUE = Q(next_reconcile_at__isnull=False) & ~Q(
    reconcile_frequency=Connector.Reconciliation.OFF
)


def _reconcile_now(now):
    """Connectors whose next job is a reconciliation: the periodic one is due, or their
    records were stored by an older mapping (an upgrade that stores more of each record, e.g.
    contract 1.2's status fields) and a sync is due. Until a full walk rewrites them, such
    records lack what the new mapping stores (a document stored before the status fields
    does not count as published), so the upgrade's walk replaces the next due incremental,
    whatever the reconciliation frequency, at the schedule's pace if it fails; a
    reconciliation after an upgrade counts no drift (runner)."""
    stale_mapping = Q(
        mapping_revision__lt=MAPPING_REVISION,
        initial_import_done_at__isnull=False,  # else its first import is the walk
        next_sync_at__lte=now,
    )
    return (RECONCILE_DUE & Q(next_reconcile_at__lte=now)) | stale_mapping


def _imported():
    """Whether the connector's data was imported (services.first_import_done_at, as an
    annotation: one query per batch instead of one per connector)."""
    completed = SyncJob.objects.filter(
        connector=OuterRef("pk"), status=SyncJob.Status.COMPLETED, scope={}, dry_run=False
    )
    return Case(
        When(initial_import_done_at__isnull=False, then=Value(True)),
        default=Exists(completed),
        output_field=BooleanField(),
    )


def dispatch_due(now=None, *, batch_size: int = DISPATCH_BATCH) -> list[SyncJob]:
    """Create an INCREMENTAL job for every due connector and move its next_sync_at on (an
    INITIAL one for a connector whose first import has not run: that is what it is, and
    its name says so instead of "Incremental sync #1").

    Most ticks find nothing due: one query (no transaction) says so, and the tick ends.
    Otherwise rows are locked with FOR UPDATE SKIP LOCKED in batches: two beats (or a beat
    and a manual dispatcher) running at once each take different connectors, and a connector
    locked by one is simply left to it. A batch costs a fixed number of queries whatever its
    size (one UPDATE of the connectors, one INSERT of the jobs); the partial unique index on
    active jobs is the last line of defence against a manual sync started meanwhile.
    """
    now = now or timezone.now()
    reconcile_now = _reconcile_now(now)
    # One row, or none: whether anything is due, and then whether a reconciliation is.
    first = (
        _scheduled(now)
        .filter(Q(next_sync_at__lte=now) | reconcile_now)
        .annotate(reconcile=ExpressionWrapper(reconcile_now, output_field=BooleanField()))
        .order_by("-reconcile")
        .values_list("reconcile", flat=True)[:1]
    )
    first = list(first)
    if not first:
        return []
    jobs = dispatch_reconciliations(now, batch_size=batch_size) if first[0] else []
    while True:
        with transaction.atomic():
            due = list(
                _scheduled(now)
                .select_for_update(skip_locked=True, of=("self",))
                .filter(next_sync_at__lte=now)
                .annotate(imported=_imported())
                .order_by("next_sync_at", "pk")[:batch_size]
            )
            batch = []
            for connector in due:
                batch.append((connector, connector.next_sync_at))
                connector.next_sync_at = connector.compute_next_sync_at(now)
                connector.updated_at = now
            Connector.objects.bulk_update(due, ["next_sync_at", "updated_at"])
            jobs += _start_jobs(
                [
                    (
                        connector,
                        SyncJob.Kind.INCREMENTAL if connector.imported else SyncJob.Kind.INITIAL,
                        due_at,
                    )
                    for connector, due_at in batch
                ]
            )
        if len(due) < batch_size:
            return jobs


def dispatch_reconciliations(now=None, *, batch_size: int = DISPATCH_BATCH) -> list[SyncJob]:
    """Create a RECONCILE job for every connector whose reconciliation is due and move its
    next_reconcile_at on; locked and batched as dispatch_due's batches are. Runs first in a
    tick: a reconciliation catches up like an incremental sync does, so the incremental due
    at the same time waits for it (one job in flight per connector) and is not needed.

    Scheduled connectors only (not paused, not manual-only), once their first sync
    completed (runner.finish sets the first next_reconcile_at), and those whose records an
    upgrade's full walk must rewrite (see _reconcile_now)."""
    now = now or timezone.now()
    jobs: list[SyncJob] = []
    while True:
        with transaction.atomic():
            due = list(
                _scheduled(now)
                .select_for_update(skip_locked=True, of=("self",))
                .filter(_reconcile_now(now))
                .annotate(imported=_imported())
                .order_by("next_reconcile_at", "pk")[:batch_size]
            )
            batch = []
            for connector in due:
                if connector.imported:
                    batch.append((connector, SyncJob.Kind.RECONCILE, connector.next_reconcile_at))
                else:
                    logger.info(
                        "connector %s not reconciled: %s", connector.pk, NothingToReconcile()
                    )
                connector.next_reconcile_at = connector.compute_next_reconcile_at(now)
                connector.updated_at = now
            Connector.objects.bulk_update(due, ["next_reconcile_at", "updated_at"])
            jobs += _start_jobs(batch)
        if len(due) < batch_size:
            return jobs


def _start_jobs(batch) -> list[SyncJob]:
    """Create the scheduled jobs of a batch of (connector, kind, due_at) in one INSERT and
    enqueue each after commit (services.start_sync's work, without its checks: the caller
    made them for the whole batch)."""
    jobs = [
        SyncJob(connector=connector, kind=kind, trigger=SyncJob.Trigger.SCHEDULER)
        for connector, kind, _ in batch
    ]
    if not jobs:
        return []
    try:
        with transaction.atomic():  # a savepoint: a conflict loses only this INSERT
            SyncJob.objects.bulk_create(jobs)
    except IntegrityError:
        # A manual or pushed sync of one of them started since the batch was read (those
        # do not lock the connector): one by one, so only that connector is skipped.
        jobs = []
        for connector, kind, due_at in batch:
            try:
                jobs.append(
                    start_sync(connector, kind, trigger=SyncJob.Trigger.SCHEDULER, due_at=due_at)
                )
            except SyncRefused as exc:
                logger.info("connector %s not dispatched: %s", connector.pk, exc)
        return jobs
    for job, (_, _, due_at) in zip(jobs, batch, strict=True):
        enqueue_job(job, due_at)
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


# A PENDING job no worker has claimed after this long is failed: no worker is running, or the
# queue is jammed. Long enough for a busy queue to drain; short enough that the connector
# shows ERROR (and can be synced again) the same hour instead of "already running" for ever.
PENDING_GIVE_UP_AFTER = timedelta(minutes=30)


def resend_lost(now=None) -> tuple[int, int]:
    """Re-send PENDING jobs whose task message may be lost; returns (re-sent, failed).

    A message is lost when Redis restarts without persistence while the job waits in the
    queue, or when the broker was down as the job was created (start_sync's enqueue is
    robust). A job still PENDING SYNC_STALE_AFTER_SECONDS after it was created (or last
    re-sent) is sent again: if the first message was only delayed, the second delivery finds
    the job claimed and does nothing (SyncJob.claim is conditional). On a PENDING job,
    `heartbeat_at` records the last re-send (claim() overwrites it), so a job is re-sent at
    most once per period. After PENDING_GIVE_UP_AFTER the job is failed instead.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS)
    pending = SyncJob.objects.filter(status=SyncJob.Status.PENDING)
    resent = failed = 0
    for job in pending.filter(created_at__lt=now - PENDING_GIVE_UP_AFTER):
        claimed = SyncJob.claim(job.pk)  # PENDING -> RUNNING, so no late delivery runs it
        if claimed is None:
            continue
        waited = int((now - job.created_at).total_seconds() // 60)
        message = (
            f"No worker started this sync in {waited} minutes, so it was marked failed. "
            "Check that the Celery worker is running and can reach the broker (Redis), "
            "then run the sync again."
        )
        if finish(claimed, SyncJob.Status.FAILED, message):
            failed += 1
            logger.warning("failed sync job %s: never picked up by a worker", job.pk)
    lost = pending.filter(created_at__lt=cutoff).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff)
    )
    for job_id in lost.values_list("pk", flat=True):
        # Mark first, conditionally: a worker claiming the job meanwhile wins, and two
        # sweepers running at once do not both re-send.
        if (
            SyncJob.objects.filter(pk=job_id, status=SyncJob.Status.PENDING)
            .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
            .update(heartbeat_at=now)
        ):
            try:
                run_sync_job.delay(job_id)
            except Exception:
                # The broker is still down: the next sweep tries again.
                logger.warning("could not re-send sync job %s", job_id, exc_info=True)
                SyncJob.objects.filter(pk=job_id, status=SyncJob.Status.PENDING).update(
                    heartbeat_at=None
                )
                continue
            resent += 1
            logger.warning("re-sent sync job %s (still PENDING, message presumed lost)", job_id)
    return resent, failed
