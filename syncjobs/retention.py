"""Data lifecycle: per-record log rows are removed after SYNC_LOG_RETENTION_DAYS (FAILED and
CONFLICT rows after twice as long); job rows and their counters are kept for ever.

A full sync writes one log row per record (100,000 SKIP rows for a 100,000-record site), so
without retention the log grows by the size of every site at every full walk. Rows are
removed per finished job, in small batches each in its own short transaction, by the job
index the log already has (no index of its own, which every sync would pay for): a running
sync's rows are never touched (only terminal jobs are pruned), and its inserts never wait
for a long delete. Each job remembers how much of its log is left (SyncJob.log_kept), so a
run only visits jobs that crossed a threshold since the last one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from syncjobs.models import SyncJob, SyncLogEntry

logger = logging.getLogger(__name__)

KEPT_LONGER = (SyncLogEntry.Status.FAILED, SyncLogEntry.Status.CONFLICT)


@dataclass
class PruneResult:
    jobs: int = 0
    rows: int = 0


def _delete_batch(job_id: int, batch_size: int, keep_failures: bool) -> int:
    """Delete up to batch_size log rows of one job; returns how many."""
    keep = "AND status NOT IN ('FAILED', 'CONFLICT')" if keep_failures else ""
    table = SyncLogEntry._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN "  # noqa: S608 (no user input: a constant)
            f"(SELECT id FROM {table} WHERE job_id = %s {keep} LIMIT %s)",
            [job_id, batch_size],
        )
        return cursor.rowcount


def prune(
    *,
    days: int | None = None,
    batch_size: int = 5000,
    pause: float = 0.0,
    yield_ratio: float = 0.0,
    now=None,
    max_seconds: float | None = None,
) -> PruneResult:
    """Remove log rows past retention. After each batch, `pause` seconds plus `yield_ratio`
    times the batch's own time leave the machine to the syncs (1.0: the prune works at most
    half the time; a busy machine makes batches slower, and the prune yields longer);
    `max_seconds` stops a run early (the next one continues)."""
    days = settings.SYNC_LOG_RETENTION_DAYS if days is None else days
    result = PruneResult()
    if days <= 0:
        return result  # retention off: keep every row
    now = now or timezone.now()
    started = time.monotonic()
    # Twice as long first: a job past both thresholds loses every row at once.
    steps = (
        (now - timedelta(days=2 * days), (SyncJob.LogKept.ALL, SyncJob.LogKept.FAILURES), False),
        (now - timedelta(days=days), (SyncJob.LogKept.ALL,), True),
    )
    for cutoff, kept, keep_failures in steps:
        jobs = SyncJob.objects.filter(
            status__in=SyncJob.TERMINAL_STATUSES, finished_at__lt=cutoff, log_kept__in=kept
        ).values_list("pk", flat=True)
        for job_id in jobs.iterator(chunk_size=500):
            while True:
                batch_started = time.monotonic()
                deleted = _delete_batch(job_id, batch_size, keep_failures)
                result.rows += deleted
                if deleted and (pause or yield_ratio):
                    time.sleep(pause + yield_ratio * (time.monotonic() - batch_started))
                if deleted < batch_size:
                    break
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    return result
            left = SyncJob.LogKept.FAILURES if keep_failures else SyncJob.LogKept.NONE
            SyncJob.objects.filter(pk=job_id).update(log_kept=left)
            result.jobs += 1
    logger.info("pruned %s log rows of %s jobs", result.rows, result.jobs)
    return result
