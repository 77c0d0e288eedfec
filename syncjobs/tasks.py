"""Celery tasks: thin wrappers that take ids and hand over to plain-Python code."""

from celery import shared_task


@shared_task(name="syncjobs.tasks.run_sync_job", acks_late=True)
def run_sync_job(job_id: int, due_at: str | None = None, kind: str | None = None) -> None:
    """`due_at` (ISO 8601): when a scheduled job was due, for the schedule lag metric.
    `kind`: the job's kind, read by the queue router only (syncjobs/routing.py) so that
    routing a message costs no query; the runner reads the job's row as always."""
    from datetime import datetime

    from syncjobs.runner import run_job

    run_job(job_id, due_at=datetime.fromisoformat(due_at) if due_at else None)


@shared_task(name="syncjobs.tasks.dispatch_due_syncs", ignore_result=True)
def dispatch_due_syncs() -> int:
    from syncjobs.scheduler import dispatch_due

    return len(dispatch_due())


@shared_task(name="syncjobs.tasks.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> int:
    from syncjobs.scheduler import resend_lost, sweep_stale

    resend_lost()
    return sweep_stale()


@shared_task(name="syncjobs.tasks.prune_sync_logs", ignore_result=True)
def prune_sync_logs() -> int:
    from syncjobs.retention import prune

    # Bounded: a backlog (the first run after an upgrade) is worked off over several runs.
    # Paced (yield_ratio): a sync running meanwhile is slowed less (bench/log_retention.py).
    return prune(yield_ratio=PRUNE_YIELD_RATIO, max_seconds=600).rows


# After each batch of the prune, sleep as long as the batch took, leaving the database to the
# syncs: at 10 million rows, pruning flat out slowed a concurrent sync by +104 % on the shared
# 2-core machine (a noisy figure: docs/log-retention.md).
PRUNE_YIELD_RATIO = 1.0
