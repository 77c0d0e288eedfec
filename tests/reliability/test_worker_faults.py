"""Real worker processes under real failures: a `celery -A config worker` subprocess on its
own Redis (a redis-server this test starts on a free port, never the machine's shared one)
and the test database, syncing a slow simulated site.

- SIGKILL mid-job: the job leaves RUNNING within the sweeper's window and the next run
  finishes the work;
- Redis restarted mid-sync: the job still ends, the worker reconnects and runs the next job;
- PostgreSQL drops the worker's connections mid-job: the job fails cleanly (or is swept),
  never hangs, and the worker runs the next job.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from records.models import RECORD_MODELS
from syncjobs.models import SyncJob
from syncjobs.services import start_sync
from tests.conftest import make_connector
from tests.waiting import wait_until
from wpsim import SimulatedSite, serve

from .helpers import free_port, good_ids, purge_broker

ROOT = Path(__file__).resolve().parents[2]
KEY = "worker-test-sync-key-00112233445566778899aabbccddeeff"
STALE_AFTER = 3  # seconds without a heartbeat before the sweeper declares a job dead
TYPES = ["article", "member", "event", "document"]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="rely-redis-")
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        def answers() -> bool:
            try:
                return redis.Redis(port=self.port, socket_timeout=0.5).ping()
            except redis.RedisError:
                return False

        wait_until(answers, timeout=10, what=f"redis-server to answer on port {self.port}")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


class Worker:
    """`celery -A config worker -B` (embedded beat runs the sweeper every second)."""

    def __init__(self, broker_url: str, pool: str = "solo"):
        self.broker_url = broker_url
        # solo: one process, deterministic; prefork (production's pool) is the one that
        # enforces Celery's time limits.
        self.pool = pool
        self.process = None
        self.workdir = tempfile.mkdtemp(prefix="rely-worker-")
        self.log_path = Path(self.workdir) / "worker.log"

    def env(self) -> dict:
        db = django_settings.DATABASES["default"]
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.test_settings",
                "DATABASE_URL": (
                    f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:"
                    f"{db['PORT'] or 5432}/{db['NAME']}"
                ),
                "REDIS_URL": self.broker_url,
                "CELERY_BROKER_URL": self.broker_url,
                "SYNC_STALE_AFTER_SECONDS": str(STALE_AFTER),
                "SYNC_SWEEP_INTERVAL": "1",
                "SYNC_DISPATCH_INTERVAL": "3600",
                "WORDPRESS_ALLOW_PRIVATE_HOSTS": "1",
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start(self):
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-B",
                "--schedule",
                str(Path(self.workdir) / "beat-schedule"),
                "--pool",
                self.pool,
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill takes beat too
        )
        return self

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def assert_key_not_logged(self, *keys: str) -> None:
        """The worker's whole log (task receipts, errors, tracebacks) never holds a key."""
        text = self.log_path.read_text(errors="replace")
        for key in keys or (KEY,):
            assert key not in text and key[:12] not in text, "the API key is in the worker log"


@pytest.fixture
def worker_factory(own_redis):
    started = []

    def start(pool="solo"):
        worker = Worker(own_redis.url, pool).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        shutil.rmtree(worker.workdir, ignore_errors=True)


@pytest.fixture
def slow_site():
    """A site where every sync request takes 0.25 s: a job lasts several seconds."""
    site = SimulatedSite(records=120, seed=5, key=KEY)
    site.inject("latency", seconds=0.25, every=True)
    with serve(site) as server:
        site.url = server.url
        yield site


@pytest.fixture
def connector(org_a, slow_site):
    connector = make_connector(
        org_a, site_url=slow_site.url, api_key=KEY, entity_types=TYPES, frequency="manual"
    )
    purge_broker()
    yield connector
    purge_broker()


def enqueue(job: SyncJob, broker_url: str) -> None:
    """Send the job's task to the test's own Redis (start_sync enqueued it on the shared
    broker, which no worker of this test reads; that copy is purged)."""
    from kombu import Connection

    from syncjobs.tasks import run_sync_job

    with Connection(broker_url) as conn:
        run_sync_job.apply_async(args=[job.pk], connection=conn)


def wait_for(predicate, timeout: float, what: str, worker=None):
    return wait_until(
        predicate,
        timeout=timeout,
        interval=0.1,
        what=what,
        detail=(lambda: f"--- worker log ---\n{worker.output()}") if worker else str,
    )


def job_state(job):
    return SyncJob.objects.values("status", "error", "stats").get(pk=job.pk)


def processed(job) -> int:
    stats = job_state(job)["stats"] or {}
    return sum(c.get("processed", 0) for c in stats.values() if isinstance(c, dict))


def finished(job):
    state = job_state(job)
    return state if state["status"] in SyncJob.TERMINAL_STATUSES else None


def assert_site_fully_synced(connector, site):
    for entity_type in TYPES:
        stored = RECORD_MODELS[entity_type].objects.filter(
            connector=connector, archived_at__isnull=True
        )
        ids = list(stored.values_list("external_id", flat=True))
        assert len(ids) == len(set(ids)), f"duplicate {entity_type} records"
        assert sorted(ids) == sorted(good_ids(site, entity_type)), entity_type


def test_sigkilled_worker_job_is_swept_and_next_run_finishes(
    connector, slow_site, worker_factory, own_redis
):
    worker = worker_factory()
    job = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(job, own_redis.url)
    # Kill it once it has committed work, in the middle of the job.
    wait_for(lambda: processed(job) > 0, 60, "the job to commit its first page", worker)
    assert job_state(job)["status"] == SyncJob.Status.RUNNING
    worker.kill()
    killed_at = time.monotonic()
    kept = processed(job)

    # A fresh worker (with its embedded beat running the sweeper) takes over.
    successor = worker_factory()
    state = wait_for(lambda: finished(job), STALE_AFTER + 30, "the sweeper", successor)
    assert state["status"] == SyncJob.Status.FAILED
    assert "stopped responding" in state["error"]
    assert time.monotonic() - killed_at < STALE_AFTER + 30
    assert processed(job) == kept  # what was committed before the kill is kept

    slow_site.clear_faults()
    rerun = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(rerun, own_redis.url)
    state = wait_for(lambda: finished(rerun), 60, "the re-run", successor)
    assert state["status"] == SyncJob.Status.COMPLETED, state["error"]
    assert_site_fully_synced(connector, slow_site)
    worker.assert_key_not_logged()
    successor.assert_key_not_logged()


def test_redis_restarted_during_a_sync(connector, slow_site, worker_factory, own_redis):
    worker = worker_factory()
    job = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(job, own_redis.url)
    wait_for(lambda: processed(job) > 0, 60, "the job to start", worker)
    # stop() returns once redis-server has exited: the worker's connection is cut and every
    # message is gone; start() returns once the new, empty server answers on the same port.
    own_redis.stop()
    own_redis.start()

    state = wait_for(lambda: finished(job), 60, "the job to end after the restart", worker)
    assert state["status"] == SyncJob.Status.COMPLETED, state["error"]
    # The worker reconnects to the broker and runs the next job.
    slow_site.clear_faults()
    nxt = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(nxt, own_redis.url)
    state = wait_for(lambda: finished(nxt), 60, "the next job after the restart", worker)
    assert state["status"] == SyncJob.Status.COMPLETED, state["error"]
    assert_site_fully_synced(connector, slow_site)
    worker.assert_key_not_logged()


def terminate_other_backends() -> int:
    """pg_terminate_backend() every other session on the test database (the worker's)."""
    db = django_settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        mine = connection.cursor().connection.info.backend_pid
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> %s AND pid <> pg_backend_pid()",
            [db["NAME"], mine],
        ).fetchall()
    return len(rows)


def test_postgres_connection_dropped_mid_job(connector, slow_site, worker_factory, own_redis):
    worker = worker_factory()
    job = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(job, own_redis.url)
    wait_for(lambda: processed(job) > 0, 60, "the job to start", worker)
    assert terminate_other_backends() >= 1

    # Either the runner records the failure itself, or (if its connection could not
    # even write that) the sweeper does within its window: never RUNNING for ever.
    state = wait_for(lambda: finished(job), STALE_AFTER + 40, "the job to end", worker)
    assert state["status"] in (SyncJob.Status.FAILED, SyncJob.Status.COMPLETED)
    if state["status"] == SyncJob.Status.FAILED:
        assert state["error"].strip()
        assert "connection" in state["error"].lower() or "stopped responding" in state["error"]
    # The worker survives and runs the next job on a fresh connection.
    slow_site.clear_faults()
    nxt = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(nxt, own_redis.url)
    state = wait_for(lambda: finished(nxt), 60, "the next job", worker)
    assert state["status"] == SyncJob.Status.COMPLETED, state["error"]
    assert_site_fully_synced(connector, slow_site)
    worker.assert_key_not_logged()


SOFT_LIMIT = 3  # seconds; the task's own limit (60 s) is too long for a test


def test_connection_test_runs_in_a_worker_and_stops_at_its_time_limit(
    org_a, worker_factory, own_redis
):
    """A site that accepts the plugin probe and never answers: the real task, in a real
    prefork worker (production's pool, the one that enforces time limits), is stopped by its
    soft time limit well before the client's own 10 s timeout, and the result says so."""
    from kombu import Connection

    from diagnostics.models import ConnectionTest
    from diagnostics.tasks import run_connection_test_task

    # The task declares the limits the worker enforces (checked here, exercised below with
    # shorter ones so the test takes seconds).
    assert run_connection_test_task.soft_time_limit == ConnectionTest.SOFT_TIME_LIMIT
    assert run_connection_test_task.time_limit == ConnectionTest.HARD_TIME_LIMIT
    assert ConnectionTest.HARD_TIME_LIMIT > ConnectionTest.SOFT_TIME_LIMIT

    site = SimulatedSite(records=10, seed=5, key=KEY)
    site.inject("hang", endpoint="ping", every=True, seconds=30)
    with serve(site) as server:
        connector = make_connector(org_a, site_url=server.url, api_key=KEY, frequency="manual")
        worker = worker_factory(pool="prefork")
        test = ConnectionTest.objects.create(connector=connector)
        started = time.monotonic()
        with Connection(own_redis.url) as conn:
            run_connection_test_task.apply_async(
                args=[test.pk],
                connection=conn,
                soft_time_limit=SOFT_LIMIT,
                time_limit=SOFT_LIMIT + 5,
            )

        def done():
            row = ConnectionTest.objects.get(pk=test.pk)
            return row if row.status in ConnectionTest.TERMINAL_STATUSES else None

        # Worker start-up (Django, broker) is part of the wait, the limit is not.
        result = wait_for(done, 60, "the connection test to finish", worker)
    elapsed = time.monotonic() - started
    steps = {step["key"]: step for step in result.steps}
    assert result.status == ConnectionTest.Status.FAILED
    order = ("reachable", "rest_root", "plugin", "api_key", "data")
    assert [steps[k]["status"] for k in order] == ["pass", "pass", "fail", "skipped", "skipped"]
    assert steps["plugin"]["message"] == (
        "Stopped: the test reached its time limit during this step."
    )
    assert steps["api_key"]["message"] == "Skipped: the test was stopped by its time limit."
    assert SOFT_LIMIT * 1000 - 500 <= steps["plugin"]["duration_ms"] < 10_000
    assert result.finished_at is not None
    assert elapsed < 60
    worker.assert_key_not_logged()


def test_job_queued_when_redis_restarts_is_resent_and_completes(
    connector, slow_site, worker_factory, own_redis
):
    """The job waits in the queue (no worker yet) and Redis restarts empty: the message is
    gone. The sweeper (beat, every second here) re-sends the PENDING job and it completes."""
    job = start_sync(connector, SyncJob.Kind.FULL)
    enqueue(job, own_redis.url)
    own_redis.stop()
    own_redis.start()  # same port, empty: the queued message is lost
    worker = worker_factory()
    state = wait_for(
        lambda: finished(job), STALE_AFTER + 60, "the lost job to be re-sent and run", worker
    )
    assert state["status"] == SyncJob.Status.COMPLETED, state["error"]
    assert "re-sent sync job" in worker.output()
    assert_site_fully_synced(connector, slow_site)
    worker.assert_key_not_logged()
