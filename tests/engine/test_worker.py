"""End to end through real Celery workers and Redis: the path a production sync takes.

The first test runs a worker in this process (celery.contrib.testing). The others start a
`celery worker` *process* on the test database, so it can be killed with SIGKILL like a
worker lost to the OOM killer or a redeploy, and so the scheduler, cancellation and the
`sync` command are exercised against a worker that shares nothing with the test but
PostgreSQL, Redis and the simulator on loopback.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from connectors.models import Connector
from connectors.wordpress import contract
from records.models import Article, Member
from syncjobs import services
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.scheduler import dispatch_due, sweep_stale
from tests.conftest import make_connector
from tests.waiting import wait_until

from .conftest import SIM_KEY, log_for

ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER = 6  # seconds; the worker process then beats every second


@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_a_sync_started_by_the_service(org_a, site, server):
    from celery.contrib.testing.worker import start_worker

    import syncjobs.tasks  # noqa: F401  (registers the tasks with the app)
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "set REDIS_URL for this test"
    connector = make_connector(
        org_a,
        name="Worker site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "conference"],
    )
    app.control.purge()  # messages other tests left for jobs that no longer exist
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        job = wait_for(services.start_sync(connector, SyncJob.Kind.FULL), finished)
    connections.close_all()

    assert job.status == SyncJob.Status.COMPLETED, job.error
    for entity_type in ("member", "conference"):
        counters = job.stats[entity_type]
        assert counters["total"] == counters["processed"] == site.count(entity_type)
        assert counters["created"] + counters["failed"] == site.count(entity_type)
        assert counters["failed"] >= site.bad_count(entity_type)
    assert job.stats["member"]["failed"] == site.bad_count("member")  # members have no slugs
    connector.refresh_from_db()
    assert connector.last_sync_at is not None
    # A high-water mark and a change-log position per type; a deletions cursor only for a type
    # WordPress deleted from.
    assert {k for k in connector.cursors if not k.startswith("deletions:")} == {
        "member",
        "conference",
        "changes:member",
        "changes:conference",
    }
    assert {k.split(":")[1] for k in connector.cursors if ":" in k} <= {"member", "conference"}
    assert connector.cursors["member"] == site.high_water_mark("member")


# --- A worker process ------------------------------------------------------------------------


class WorkerProcess:
    """`celery -A config worker` on the test database, started and killed by the test."""

    def __init__(self, log_dir: Path, *, pool: str = "solo", **environment: str):
        self.log_dir = log_dir
        self.pool = pool
        self.extra_environment = environment
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def environment(self) -> dict[str, str]:
        db = connection.settings_dict
        auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
        url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.test_settings",
            DATABASE_URL=url,  # the test database, not the one DATABASE_URL names
            CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
            SYNC_STALE_AFTER_SECONDS=str(STALE_AFTER),
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_environment)
        return env

    def start(self) -> None:
        from config.celery import app

        self.starts += 1
        log = open(self.log_dir / f"worker-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", self.pool),
                *(("--concurrency", "1") if self.pool == "prefork" else ()),
                *("--loglevel", "WARNING", "--without-gossip", "--without-mingle"),
                *("--hostname", f"engine-test-{os.getpid()}-{self.starts}@%h"),
            ],
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            if app.control.ping(timeout=0.5):
                return
        raise AssertionError("the worker did not answer a ping in 60 s:\n" + self.output())

    def kill(self) -> None:
        """SIGKILL: no exception handler, no finally, no acknowledgement runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.log_dir.glob("*.log"))


def running_worker(log_dir: Path, **options):
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "set REDIS_URL for these tests"
    app.control.purge()
    process = WorkerProcess(log_dir, **options)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        connections.close_all()


@pytest.fixture
def worker(tmp_path):
    yield from running_worker(tmp_path)


@pytest.fixture
def prefork_worker(tmp_path):
    """Celery's default pool, as production runs it: its main process answers pings while a
    pool process runs a task (a solo worker cannot until the task ends)."""
    yield from running_worker(tmp_path, pool="prefork")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def ended(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it: it runs no more."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(job, condition, seconds=120, worker=None):
    def reached():
        job.refresh_from_db()
        return condition(job)

    def detail():
        return f"it is {job.status} {job.stats}\n" + (worker.output() if worker else "")

    wait_until(reached, timeout=seconds, interval=0.1, what=f"job #{job.pk}", detail=detail)
    return job


def finished(job):
    return job.is_terminal


def article_processed(job):
    return (job.stats or {}).get("article", {}).get("processed", 0)


@pytest.fixture
def big_site():
    """2,000 records: 500 articles, five pages of 100, so a job can be caught mid-way."""
    from wpsim import SimulatedSite

    return SimulatedSite(records=2000, seed=5, key=SIM_KEY)


@pytest.fixture
def big_server(big_site):
    from wpsim import serve

    with serve(big_site, host="127.0.0.1", port=0) as running:
        yield running


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_job_is_swept_failed_and_the_rerun_makes_no_duplicates(
    org_a, big_site, big_server, worker, settings
):
    settings.SYNC_STALE_AFTER_SECONDS = STALE_AFTER
    connector = make_connector(
        org_a, site_url=big_server.url, api_key=SIM_KEY, entity_types=["article"]
    )
    # Each article page takes a second, so the kill lands between two pages.
    big_site.inject("latency", "articles", seconds=1.0, every=True)
    job = services.start_sync(connector, SyncJob.Kind.FULL)
    wait_for(job, lambda j: article_processed(j) >= 100, worker=worker)
    worker.kill()

    committed = Article.objects.filter(connector=connector).count()
    assert 0 < committed < big_site.count("article")  # the first page(s) stay committed
    job.refresh_from_db()
    assert job.status == SyncJob.Status.RUNNING  # nobody could finish it: the worker is dead
    beat = job.heartbeat_at
    # Time passing is what this checks: a live worker would beat every second (STALE_AFTER / 6)
    time.sleep(2.5)
    job.refresh_from_db()
    assert job.heartbeat_at == beat  # nothing beats for a dead worker

    # The sweeper as it runs once the heartbeat is STALE_AFTER old (rather than waiting for it).
    assert sweep_stale(now=beat + timedelta(seconds=STALE_AFTER + 1)) == 1

    job.refresh_from_db()
    assert job.status == SyncJob.Status.FAILED
    assert job.error.startswith("The worker running this sync stopped responding (last heartbeat")
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR
    assert "stopped responding" in connector.status_message

    # A new worker runs the sync again: what was committed is found, nothing is duplicated.
    big_site.clear_faults()
    worker.start()
    rerun = services.start_sync(connector, SyncJob.Kind.FULL)
    wait_for(rerun, finished, worker=worker)
    assert rerun.status == SyncJob.Status.COMPLETED, rerun.error
    counters = rerun.stats["article"]
    assert counters["skipped"] == committed  # found as stored, nothing written twice
    served = big_site.count("article")
    stored = Article.objects.filter(connector=connector)
    assert stored.count() + counters["failed"] == served
    assert stored.values("external_id").distinct().count() == stored.count()
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_runs_a_sync(org_a, big_site, big_server, prefork_worker):
    # The default pool runs tasks in daemonic processes, as production does.
    worker = prefork_worker
    connector = make_connector(
        org_a, site_url=big_server.url, api_key=SIM_KEY, entity_types=["article", "member"]
    )
    big_site.inject("latency", "articles", seconds=0.5, every=True)
    job = services.start_sync(connector, SyncJob.Kind.FULL)
    wait_for(job, finished, worker=worker)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    for entity_type, model in (("article", Article), ("member", Member)):
        counters = job.stats[entity_type]
        stored = model.objects.filter(connector=connector).count()
        assert stored == counters["created"] == big_site.count(entity_type) - counters["failed"]


def _is_child(pid: int, parent: int) -> bool:
    try:
        return parent_of(pid) == parent
    except (OSError, ValueError):
        return False


@pytest.mark.django_db(transaction=True)
def test_cancel_reaches_a_running_worker_within_one_page(org_a, big_site, big_server, worker):
    connector = make_connector(
        org_a, site_url=big_server.url, api_key=SIM_KEY, entity_types=["article", "member"]
    )
    big_site.inject("latency", "articles", seconds=1.0, every=True)
    job = services.start_sync(connector, SyncJob.Kind.FULL)
    wait_for(job, lambda j: article_processed(j) >= 100, worker=worker)

    services.request_cancel(job)
    asked_at = article_processed(SyncJob.objects.get(pk=job.pk))

    wait_for(job, finished, seconds=30, worker=worker)
    assert job.status == SyncJob.Status.CANCELLED
    assert job.error.startswith("Cancelled at an administrator's request")
    # At most the page in progress when the admin clicked was stored after the request.
    assert article_processed(job) <= asked_at + 100
    assert article_processed(job) < big_site.count("article")
    assert job.stats["member"]["processed"] == 0  # the next phase never started
    assert SyncLogEntry.objects.filter(job=job).count() == article_processed(job)
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ACTIVE  # a cancel is not an error


@pytest.mark.django_db(transaction=True)
def test_scheduler_and_worker_run_an_incremental_after_edits_and_skip_paused(
    org_a, site, server, worker
):
    scheduled = make_connector(
        org_a,
        name="Scheduled site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "article"],
        frequency=Connector.Frequency.HOURLY,
    )
    paused = make_connector(
        org_a,
        name="Paused site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member"],
        frequency=Connector.Frequency.HOURLY,
        status=Connector.Status.PAUSED,
        next_sync_at=timezone.now() - timedelta(minutes=5),
    )
    first = wait_for(services.start_sync(scheduled, SyncJob.Kind.FULL), finished, worker=worker)
    assert first.status == SyncJob.Status.COMPLETED, first.error
    scheduled.refresh_from_db()
    mark = scheduled.cursors["member"]
    assert mark == site.high_water_mark("member")

    site.clock.advance(60)
    edited = [i for i in site.edit("member", 3) if i not in site.bad_ids("member")]
    Connector.objects.filter(pk=scheduled.pk).update(
        next_sync_at=timezone.now() - timedelta(seconds=1)
    )
    site.request_log.clear()

    (job,) = dispatch_due()

    assert job.connector_id == scheduled.pk  # the paused connector was skipped
    assert not SyncJob.objects.filter(connector=paused).exists()
    assert (job.kind, job.trigger) == (SyncJob.Kind.INCREMENTAL, SyncJob.Trigger.SCHEDULER)
    wait_for(job, finished, worker=worker)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    for member_id in edited:
        entry = log_for(job, "member", member_id)
        assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
        assert "(edited" in Member.objects.get(external_id=str(member_id)).display_name
    assert job.stats["member"]["processed"] < 10  # only what changed, plus the overlap
    # The request started at the source's own high-water mark minus the contract's overlap.
    members_path = contract.API_PREFIX + contract.ENTITY_ENDPOINTS["member"]
    (request,) = [r for r in site.request_log if members_path in r["path"]]
    query = parse_qs(urlsplit(request["path"]).query)
    expected = contract.parse_gmt(mark) - timedelta(seconds=contract.INCREMENTAL_OVERLAP_SECONDS)
    assert query["modified_after"] == [contract.format_gmt(expected)]
    scheduled.refresh_from_db()
    assert scheduled.cursors["member"] == site.high_water_mark("member") > mark
    assert scheduled.next_sync_at > timezone.now() + timedelta(minutes=50)

    # The paused connector still syncs by hand, and stays paused.
    manual = wait_for(services.start_sync(paused, SyncJob.Kind.FULL), finished, worker=worker)
    assert manual.status == SyncJob.Status.COMPLETED, manual.error
    paused.refresh_from_db()
    assert paused.status == Connector.Status.PAUSED


@pytest.mark.django_db(transaction=True)
def test_sync_command_waits_for_the_worker_and_prints_the_summary(
    org_a, site, server, prefork_worker
):
    # The command pings the workers after it queued the job: a solo worker may already be
    # running it and not answer in time (the command then runs it itself, and finds it claimed).
    from io import StringIO

    from django.core.management import CommandError, call_command

    connector = make_connector(
        org_a,
        name="Command site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "conference"],
    )
    out = StringIO()
    call_command("sync", "Command site", "--kind", "initial", "--wait", stdout=out)

    text = out.getvalue()
    job = SyncJob.objects.get(connector=connector)
    assert "No worker answered" not in text  # the worker ran it, the command waited
    assert f"Job #{job.pk} (Initial import) queued for Command site." in text
    assert f"Job #{job.pk}: COMPLETED" in text
    member = job.stats["member"]
    assert (
        f"member{member['total']:>16}{member['processed']:>10}{member['created']:>12}"
        f"{member['updated']:>12}{member['skipped']:>12}{0:>12}{member['failed']:>12}"
    ) in text
    assert text.split("\n")[2].split()[-2:] == ["pushed", "push_failed"]  # the header
    assert "conference" in text and "Duration:" in text

    with pytest.raises(CommandError, match="The initial import already completed on"):
        call_command("sync", str(connector.pk), "--kind", "initial", "--wait", stdout=StringIO())
