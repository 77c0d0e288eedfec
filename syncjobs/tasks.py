"""The job task services enqueue: a thin wrapper that takes an id and hands over to the runner.
(What celery beat sends is in syncjobs.periodic.)"""

from datetime import datetime

from celery import shared_task

from syncjobs.runner import run_job


@shared_task(name="syncjobs.tasks.run_sync_job", acks_late=True)
def run_sync_job(job_id: int, due_at: str | None = None, kind: str | None = None) -> None:
    """`due_at` (ISO 8601): when a scheduled job was due, for the schedule lag metric.
    `kind`: the job's kind, read by the queue router only (syncjobs/routing.py) so that
    routing a message costs no query; the runner reads the job's row as always."""
    run_job(job_id, due_at=datetime.fromisoformat(due_at) if due_at else None)
