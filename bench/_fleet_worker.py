"""The project's Celery app (config.celery) with what bench/fleet.py measures in a worker:
the statements each task ran (every connection of every thread: the sync's writer thread
has its own), and where its wall time went (CPU, waiting for a CPU, the rest: waiting on
the site, PostgreSQL or Redis), counted per task name in Redis, and a no-op task for the
baseline.

Started as `celery -A bench._fleet_worker worker ...`: the same worker as `-A config`
(same tasks, routes and settings) plus these signal handlers, which production lacks.
"""

import os
import threading
import time

import redis
from celery import signals
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from config.celery import app

PREFIX = os.environ.get("BENCH_FLEET_KEY", "bench-fleet")
_lock = threading.Lock()
_statements = 0
_redis = None
_started: tuple[float, float, float] = (0.0, 0.0, 0.0)


def runqueue_seconds() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat; 0.0
    where it is unavailable). The task's own thread only: its helper threads have ended by
    the time the task does, and their waits are gone with them, so this is a lower bound."""
    try:
        with open("/proc/thread-self/schedstat") as schedstat:
            return int(schedstat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


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
    global _statements, _started
    with _lock:
        _statements = 0
    _started = (time.perf_counter(), time.process_time(), runqueue_seconds())


@signals.task_postrun.connect
def _task_ended(task=None, **kwargs):
    global _redis
    # A sync's last statements may run in its writer thread: flushed before the task ends.
    with _lock:
        statements = _statements
    wall, cpu, runqueue = (
        now - then
        for now, then in zip(
            (time.perf_counter(), time.process_time(), runqueue_seconds()), _started, strict=True
        )
    )
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ["REDIS_URL"])
    pipe = _redis.pipeline()
    pipe.hincrby(f"{PREFIX}:statements", task.name, statements)
    pipe.hincrby(f"{PREFIX}:tasks", task.name, 1)
    # Microseconds, summed per task name: (wall, CPU of all the process's threads, runqueue).
    pipe.hincrby(f"{PREFIX}:wall_us", task.name, int(wall * 1e6))
    pipe.hincrby(f"{PREFIX}:cpu_us", task.name, int(cpu * 1e6))
    pipe.hincrby(f"{PREFIX}:runqueue_us", task.name, int(runqueue * 1e6))
    pipe.execute()


@app.task(name="bench.fleet.noop", ignore_result=True)
def noop() -> None:
    """The baseline: a Celery task round trip that does nothing."""


@signals.worker_process_init.connect
def _fresh_connection(**kwargs):
    global _redis
    _redis = None  # not the parent's socket
