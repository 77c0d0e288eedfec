"""Celery task: a thin wrapper that takes an id and hands over to diagnostics.runner."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from diagnostics.models import ConnectionTest
from diagnostics.runner import run_connection_test


@shared_task(
    name="diagnostics.tasks.run_connection_test",
    soft_time_limit=ConnectionTest.SOFT_TIME_LIMIT,
    time_limit=ConnectionTest.HARD_TIME_LIMIT,
    ignore_result=True,
)
def run_connection_test_task(test_id: int) -> None:
    run_connection_test(test_id, abort_on=(SoftTimeLimitExceeded,))
