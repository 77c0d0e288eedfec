"""The tasks celery beat sends (config/settings.py CELERY_BEAT_SCHEDULE): thin wrappers over
the scheduler and the log retention. Their names keep the syncjobs.tasks prefix they were
scheduled under; the worker imports this module through CELERY_IMPORTS."""

from celery import shared_task

from syncjobs.retention import prune
from syncjobs.scheduler import dispatch_due, resend_lost, sweep_stale


@shared_task(name="syncjobs.tasks.dispatch_due_syncs", ignore_result=True)
def dispatch_due_syncs() -> int:
    return len(dispatch_due())


@shared_task(name="syncjobs.tasks.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> int:
    resend_lost()
    return sweep_stale()


@shared_task(name="syncjobs.tasks.prune_sync_logs", ignore_result=True)
def prune_sync_logs() -> int:
    # Bounded: a backlog (the first run after an upgrade) is worked off over several runs.
    # Paced (yield_ratio): a sync running meanwhile is slowed less (bench/log_retention.py).
    return prune(yield_ratio=PRUNE_YIELD_RATIO, max_seconds=600).rows


# After each batch of the prune, sleep as long as the batch took, leaving the database to the
# syncs: at 10 million rows, pruning flat out slowed a concurrent sync by +104 % on the shared
# 2-core machine (a noisy figure: docs/log-retention.md).
PRUNE_YIELD_RATIO = 1.0
