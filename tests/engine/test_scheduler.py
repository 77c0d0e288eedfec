"""The scheduler (dispatch_due), the stale-job sweeper and the job lifecycle rules."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from connectors.models import Connector
from syncjobs import services
from syncjobs.models import SyncJob
from syncjobs.runner import finish
from syncjobs.scheduler import dispatch_due, sweep_stale
from tests.conftest import make_connector
from tests.waiting import wait_until


def due(organisation, name, **fields):
    fields.setdefault("next_sync_at", timezone.now() - timedelta(minutes=1))
    fields.setdefault("frequency", Connector.Frequency.HOURLY)
    return make_connector(organisation, name=name, **fields)


def test_dispatch_picks_due_connectors_only(org_a):
    now = timezone.now()
    ready = due(org_a, "ready")
    due(org_a, "broken", status=Connector.Status.ERROR)
    paused = due(org_a, "paused", status=Connector.Status.PAUSED)
    manual = due(org_a, "manual", frequency=Connector.Frequency.MANUAL)
    later = due(org_a, "later", next_sync_at=now + timedelta(minutes=5))
    busy = due(org_a, "busy")
    running = SyncJob.objects.create(connector=busy, kind="FULL", status="RUNNING")

    jobs = dispatch_due(now)

    assert sorted(job.connector.name for job in jobs) == ["broken", "ready"]
    job = SyncJob.objects.get(connector=ready)
    # Never imported: the scheduled sync is its initial import, and is named so.
    assert (job.kind, job.trigger, job.status) == ("INITIAL", "scheduler", "PENDING")
    ready.refresh_from_db()
    assert ready.next_sync_at == now + timedelta(hours=1)  # moved on by the frequency
    for skipped in (paused, manual, later):
        assert not SyncJob.objects.filter(connector=skipped).exists()
    assert list(SyncJob.objects.filter(connector=busy)) == [running]
    # A second tick finds nothing due: no job is created twice.
    assert dispatch_due(now) == []


def test_dispatch_works_in_batches(org_a):
    for i in range(5):
        due(org_a, f"c{i}")
    assert len(dispatch_due(batch_size=2)) == 5
    assert SyncJob.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_create_one_job_per_connector(org_a, monkeypatch):
    from syncjobs import tasks

    enqueued = []
    # due_at: when the connector was due (the schedule lag metric).
    monkeypatch.setattr(
        tasks.run_sync_job, "delay", lambda job_id, due_at=None, kind=None: enqueued.append(job_id)
    )
    connectors = [due(org_a, f"site {i}") for i in range(20)]
    barrier = threading.Barrier(4)
    errors = []

    def dispatcher():
        try:
            barrier.wait()
            for _ in range(3):
                dispatch_due()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for connector in connectors:
        assert SyncJob.objects.filter(connector=connector).count() == 1
    # Each job was enqueued once, after its transaction committed.
    assert sorted(enqueued) == sorted(SyncJob.objects.values_list("pk", flat=True))


def test_manual_sync_allowed_while_paused_but_refused_while_one_runs(org_a):
    paused = make_connector(org_a, status=Connector.Status.PAUSED)
    job = services.start_sync(paused, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.PENDING
    with pytest.raises(services.SyncAlreadyRunning, match="already running"):
        services.start_sync(paused, SyncJob.Kind.INCREMENTAL)


def test_stale_running_job_is_swept_and_connector_flagged(org_a, settings):
    settings.SYNC_STALE_AFTER_SECONDS = 60
    now = timezone.now()
    dead_site = make_connector(org_a, name="dead")
    live_site = make_connector(org_a, name="live")
    dead = SyncJob.objects.create(
        connector=dead_site,
        kind="FULL",
        status="RUNNING",
        started_at=now - timedelta(minutes=10),
        heartbeat_at=now - timedelta(minutes=5),
    )
    live = SyncJob.objects.create(
        connector=live_site, kind="FULL", status="RUNNING", started_at=now, heartbeat_at=now
    )

    assert sweep_stale() == 1

    dead.refresh_from_db()
    assert dead.status == SyncJob.Status.FAILED
    assert "stopped responding" in dead.error
    assert dead.finished_at is not None
    dead_site.refresh_from_db()
    assert dead_site.status == Connector.Status.ERROR
    assert "stopped responding" in dead_site.status_message
    live.refresh_from_db()
    assert live.status == SyncJob.Status.RUNNING
    # The connector is free again: a new sync can start.
    assert services.start_sync(dead_site, SyncJob.Kind.FULL).status == "PENDING"


def test_runner_cannot_overwrite_a_swept_job(org_a):
    connector = make_connector(org_a)
    job = SyncJob.objects.create(connector=connector, kind="FULL", status="FAILED")
    assert finish(job, SyncJob.Status.COMPLETED) is False
    job.refresh_from_db()
    assert job.status == SyncJob.Status.FAILED


def test_claim_is_atomic_so_a_redelivered_message_does_not_run_twice(org_a):
    connector = make_connector(org_a)
    job = SyncJob.objects.create(connector=connector, kind="FULL")
    first = SyncJob.claim(job.pk)
    assert first is not None and first.status == SyncJob.Status.RUNNING
    assert first.started_at is not None and first.heartbeat_at is not None
    assert SyncJob.claim(job.pk) is None
    from syncjobs.runner import run_job

    assert run_job(job.pk) is None  # the redelivered message finds nothing to do
    job.refresh_from_db()
    assert job.status == SyncJob.Status.RUNNING


def test_cancelled_pending_job_is_never_run(org_a):
    from syncjobs.runner import run_job

    connector = make_connector(org_a)
    job = services.start_sync(connector, SyncJob.Kind.FULL)
    services.request_cancel(job)
    assert run_job(job.pk) is None
    job.refresh_from_db()
    assert job.status == SyncJob.Status.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_keeps_a_long_page_alive(org_a):
    from syncjobs.runner import Heartbeat

    connector = make_connector(org_a)
    job = SyncJob.objects.create(connector=connector, kind="FULL")
    job = SyncJob.claim(job.pk)
    old = timezone.now() - timedelta(minutes=10)
    SyncJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    heartbeat = Heartbeat(job, interval=0.05)
    heartbeat.start()

    def beaten():
        job.refresh_from_db()
        return job.heartbeat_at > old

    try:
        wait_until(beaten, timeout=10, what="the heartbeat thread to beat")
    finally:
        heartbeat.stop()
    assert job.heartbeat_at > old
    assert sweep_stale() == 0  # a beating job is never swept
    assert not heartbeat.is_alive()


@pytest.mark.django_db(transaction=True)
def test_heartbeat_stops_at_once_when_the_job_ends_not_after_its_interval(org_a):
    # A job lasts ~0.1 s and the heartbeat beats every few seconds: stop() must wake the
    # thread (an Event), or every job's end would wait for the next beat. stop() joins for 5 s
    # at most: a thread still waiting out its hour-long interval would still be alive.
    from syncjobs.runner import Heartbeat

    job = SyncJob.claim(SyncJob.objects.create(connector=make_connector(org_a), kind="FULL").pk)
    heartbeat = Heartbeat(job, interval=3600)
    heartbeat.start()

    heartbeat.stop()

    assert not heartbeat.is_alive()


@pytest.mark.django_db
def test_a_manual_sync_keeps_the_schedule_s_rhythm(org_a, monkeypatch):
    from syncjobs import services, tasks
    from syncjobs.runner import finish

    monkeypatch.setattr(tasks.run_sync_job, "delay", lambda job_id, kind=None: None)
    now = timezone.now()
    ahead = now + timedelta(minutes=40)
    connector = due(org_a, "hourly", next_sync_at=ahead)

    job = SyncJob.claim(services.start_sync(connector, SyncJob.Kind.FULL).pk)
    assert finish(job, SyncJob.Status.COMPLETED)
    connector.refresh_from_db()
    assert connector.next_sync_at == ahead  # not pushed to an hour after the manual sync
    assert connector.last_sync_at >= now

    # A manual sync that ran over the scheduled time was that run: the next one is an hour on.
    Connector.objects.filter(pk=connector.pk).update(next_sync_at=now - timedelta(minutes=1))
    connector.refresh_from_db()
    job = SyncJob.claim(services.start_sync(connector, SyncJob.Kind.FULL).pk)
    assert finish(job, SyncJob.Status.COMPLETED)
    connector.refresh_from_db()
    assert connector.next_sync_at > now + timedelta(minutes=59)


@pytest.mark.django_db
def test_once_imported_the_scheduler_runs_incremental_syncs(org_a, monkeypatch):
    from syncjobs import tasks

    monkeypatch.setattr(tasks.run_sync_job, "delay", lambda job_id, due_at=None, kind=None: None)
    imported = due(org_a, "imported", initial_import_done_at=timezone.now())
    legacy = due(org_a, "legacy")  # imported before the stamp: its history says so
    SyncJob.objects.create(
        connector=legacy, kind="FULL", status="COMPLETED", finished_at=timezone.now()
    )
    kinds = {job.connector.name: job.kind for job in dispatch_due()}
    assert kinds == {"imported": "INCREMENTAL", "legacy": "INCREMENTAL"}
    assert imported.jobs.get().get_kind_display() == "Incremental sync"


def tick_statements(now=None) -> tuple[list[SyncJob], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        jobs = dispatch_due(now)
    return jobs, len(ctx.captured_queries)


@pytest.mark.django_db
def test_a_tick_costs_the_same_whatever_the_number_of_due_connectors(org_a, monkeypatch):
    """A fleet's scheduler: one query when nothing is due, and a batch of due connectors a
    fixed number of statements (not a few per connector, as it was)."""
    from syncjobs import tasks

    monkeypatch.setattr(tasks.run_sync_job, "delay", lambda job_id, due_at=None, kind=None: None)
    assert tick_statements() == ([], 1)
    for i in range(3):
        due(org_a, f"few {i}", initial_import_done_at=timezone.now())
    few, few_statements = tick_statements()
    for i in range(30):
        due(org_a, f"many {i}", initial_import_done_at=timezone.now())
    many, many_statements = tick_statements()
    assert (len(few), len(many)) == (3, 30)
    assert few_statements == many_statements
    assert {job.kind for job in few + many} == {"INCREMENTAL"}
    assert tick_statements() == ([], 1)


@pytest.mark.django_db(transaction=True)
def test_a_sync_started_during_the_tick_costs_only_its_own_connector(org_a, monkeypatch):
    """A manual sync (which takes no row lock) started between the tick's read and its
    insert: the batch's other connectors still get their jobs."""
    from syncjobs import scheduler, tasks

    monkeypatch.setattr(tasks.run_sync_job, "delay", lambda job_id, due_at=None, kind=None: None)
    first, second = due(org_a, "first"), due(org_a, "second")
    manual = services.start_sync(second, SyncJob.Kind.FULL)
    now = timezone.now()
    jobs = scheduler._start_jobs(
        [(first, SyncJob.Kind.INCREMENTAL, now), (second, SyncJob.Kind.INCREMENTAL, now)]
    )
    assert [job.connector_id for job in jobs] == [first.pk]
    assert list(SyncJob.objects.filter(connector=second)) == [manual]
    assert SyncJob.objects.get(connector=first).trigger == SyncJob.Trigger.SCHEDULER
