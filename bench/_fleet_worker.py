"""The project's Celery app (config.celery) with what bench/fleet.py measures in a worker:
the statements each task ran (every connection of every thread: the sync's writer thread
has its own), counted per task name in Redis, and a no-op task for the baseline.

Started as `celery -A bench._fleet_worker worker ...`: the same worker as `-A config`
(same tasks, routes and settings) plus these signal handlers, which production lacks.
"""

import os
import threading

import redis
from celery import signals
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from config.celery import app

PREFIX = os.environ.get("BENCH_FLEET_KEY", "bench-fleet")
_lock = threading.Lock()
_statements = 0
_redis = None


def count_statement(execute, sql, params, many, context):
    global _statements
    with _lock:
        _statements += 1
    return execute(sql, params, many, context)


@receiver(connection_created)
def _count_on(sender, connection, **kwargs):
    if count_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(count_statement)


@signals.task_prerun.connect
def _task_started(**kwargs):
    global _statements
    with _lock:
        _statements = 0


@signals.task_postrun.connect
def _task_ended(task=None, **kwargs):
    global _redis
    # A sync's last statements may run in its writer thread: flushed before the task ends.
    with _lock:
        statements = _statements
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    pipe = _redis.pipeline()
    pipe.hincrby(f"{PREFIX}:statements", task.name, statements)
    pipe.hincrby(f"{PREFIX}:tasks", task.name, 1)
    pipe.execute()


@app.task(name="bench.fleet.noop", ignore_result=True)
def noop() -> None:
    """The baseline: a Celery task round trip that does nothing."""


@signals.worker_process_init.connect
def _fresh_connection(**kwargs):
    global _redis
    _redis = None  # not the parent's socket
