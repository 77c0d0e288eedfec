"""A task message can be lost: the broker is down when a job or a connection test is
created, or Redis restarts (without persistence) while the job waits in the queue. The
click must not fail, and the job must not stay PENDING for ever, blocking its connector:
the sweeper sends it again (the runner's conditional claim makes a duplicate harmless) and,
if no worker takes it for a long time, fails it with a message that says why."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from connectors.models import Connector
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .helpers import enqueued_tasks, purge_broker

BROKER_DOWN = OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def clean_broker():
    purge_broker()
    yield
    purge_broker()


@pytest.fixture
def broker_down(monkeypatch):
    """Publishing fails the way kombu fails when Redis refuses connections."""
    from diagnostics.tasks import run_connection_test_task
    from syncjobs.tasks import run_sync_job

    def refuse(*args, **kwargs):
        raise BROKER_DOWN

    monkeypatch.setattr(run_sync_job, "delay", refuse)
    monkeypatch.setattr(run_connection_test_task, "delay", refuse)


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


@pytest.mark.django_db(transaction=True)
def test_run_full_sync_while_the_broker_is_down(org_a, alice_client, clean_broker, broker_down):
    connector = make_connector(org_a)
    response = alice_client.post(
        reverse("connectors:sync", args=["acme", connector.pk]), {"kind": "FULL"}
    )
    # The job exists (committed before the enqueue): the admin lands on it, no error page.
    job = SyncJob.objects.get(connector=connector)
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    assert job.status == SyncJob.Status.PENDING
    page = alice_client.get(job.get_absolute_url())
    assert page.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_test_connection_while_the_broker_is_down(org_a, alice_client, clean_broker, broker_down):
    from diagnostics.models import ConnectionTest

    connector = make_connector(org_a)
    response = alice_client.post(
        reverse("diagnostics:run_connection_test", args=["acme", connector.pk]),
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Waiting for a worker" in response.text
    assert ConnectionTest.objects.get(connector=connector).status == "PENDING"


@pytest.mark.django_db(transaction=True)
def test_sweeper_resends_a_lost_job_once_per_period(org_a, alice, clean_broker, monkeypatch):
    from syncjobs.scheduler import resend_lost
    from syncjobs.services import start_sync

    stale = settings.SYNC_STALE_AFTER_SECONDS
    connector = make_connector(org_a)
    job = start_sync(connector, SyncJob.Kind.FULL, user=alice)
    purge_broker()  # the message is lost (Redis restarted empty)

    assert resend_lost() == (0, 0)  # young: a worker may simply be busy
    assert enqueued_tasks() == []

    assert resend_lost(now=later(stale + 1)) == (1, 0)
    assert [t["args"] for t in enqueued_tasks()] == [[job.pk]]
    # Sent again: not re-sent at the next sweep, only a full period later.
    assert resend_lost(now=later(stale + 2)) == (0, 0)
    assert resend_lost(now=later(2 * stale + 3)) == (1, 0)
    assert len(enqueued_tasks()) == 2
    job.refresh_from_db()
    assert job.status == SyncJob.Status.PENDING

    # A duplicate delivery is harmless: one claim wins, the other is a no-op.
    assert SyncJob.claim(job.pk) is not None
    assert SyncJob.claim(job.pk) is None


@pytest.mark.django_db(transaction=True)
def test_a_job_no_worker_takes_is_failed_and_unblocks_the_connector(org_a, alice, clean_broker):
    from syncjobs.scheduler import PENDING_GIVE_UP_AFTER, resend_lost
    from syncjobs.services import start_sync

    connector = make_connector(org_a)
    job = start_sync(connector, SyncJob.Kind.FULL, user=alice)
    purge_broker()
    assert resend_lost(now=later(PENDING_GIVE_UP_AFTER.total_seconds() + 1)) == (0, 1)
    job.refresh_from_db()
    assert job.status == SyncJob.Status.FAILED
    assert "No worker started this sync" in job.error
    assert "Celery worker" in job.error
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR
    assert job.error in connector.status_message
    # The connector is free again: the next click makes a new job.
    assert start_sync(connector, SyncJob.Kind.FULL, user=alice).pk != job.pk


@pytest.mark.django_db(transaction=True)
def test_the_sweep_task_also_resends(org_a, alice, clean_broker, monkeypatch):
    from syncjobs import periodic
    from syncjobs.services import start_sync

    connector = make_connector(org_a)
    job = start_sync(connector, SyncJob.Kind.FULL, user=alice)
    purge_broker()
    SyncJob.objects.filter(pk=job.pk).update(
        created_at=later(-settings.SYNC_STALE_AFTER_SECONDS - 5)
    )
    periodic.sweep_stale_jobs()
    assert [t["args"] for t in enqueued_tasks()] == [[job.pk]]


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_racing_resend_each_lost_job_once(org_a, clean_broker):
    import threading

    from django.db import connections

    from syncjobs.scheduler import resend_lost
    from syncjobs.services import start_sync

    jobs = [
        start_sync(make_connector(org_a, name=f"Lost {n}"), SyncJob.Kind.FULL) for n in range(10)
    ]
    purge_broker()
    when = later(settings.SYNC_STALE_AFTER_SECONDS + 1)
    barrier = threading.Barrier(2)
    results = []

    def sweeper():
        try:
            barrier.wait()
            results.append(resend_lost(now=when))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(resent for resent, _failed in results) == len(jobs)
    assert sorted(t["args"][0] for t in enqueued_tasks()) == sorted(job.pk for job in jobs)
