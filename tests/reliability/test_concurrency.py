"""Races on real PostgreSQL: twenty "Run Full Sync" clicks on one connector, and two
dispatchers ticking a hundred times over the same due connectors."""

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection, connections
from django.urls import reverse

from audit.models import AuditEvent
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import using_postgresql
from .helpers import enqueued_tasks, purge_broker

CLICKS = 20


@pytest.fixture
def clean_broker():
    purge_broker()
    yield
    purge_broker()


def test_suite_runs_on_postgresql():
    """The races below only mean something on the real database; CI runs on PostgreSQL."""
    assert using_postgresql(), "run the reliability suite with DATABASE_URL=postgres://..."


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_start_sync_calls_make_one_job(org_a, alice, clean_broker):
    connector = make_connector(org_a)
    barrier = threading.Barrier(CLICKS)

    def click(_):
        try:
            barrier.wait()
            from syncjobs.services import SyncRefused, start_sync

            try:
                return start_sync(connector, SyncJob.Kind.FULL, user=alice).pk
            except SyncRefused as exc:
                return str(exc)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(CLICKS) as pool:
        results = list(pool.map(click, range(CLICKS)))

    created = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, str)]
    assert len(created) == 1, results
    assert len(refused) == CLICKS - 1
    assert all("already running" in message for message in refused), refused[0]
    assert SyncJob.objects.filter(connector=connector).count() == 1
    # The losers' audit events rolled back with their inserts.
    assert (
        AuditEvent.objects.filter(
            connector=connector, action=AuditEvent.Action.SYNC_TRIGGERED
        ).count()
        == 1
    )
    # Exactly one task reached the broker, and it carries the job id only.
    tasks = enqueued_tasks()
    assert [t["args"] for t in tasks] == [[created[0]]], tasks


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_run_full_sync_clicks_over_http(
    org_a, alice, live_server, clean_broker
):
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    connector = make_connector(org_a)
    session = SessionStore()
    session[SESSION_KEY] = str(alice.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = alice.get_session_auth_hash()
    session.create()
    csrf = secrets.token_hex(16)  # an unmasked 32-character secret, as the cookie holds
    cookies = {settings.SESSION_COOKIE_NAME: session.session_key, settings.CSRF_COOKIE_NAME: csrf}
    url = live_server.url + reverse("connectors:sync", args=["acme", connector.pk])
    barrier = threading.Barrier(CLICKS)

    def click(_):
        with httpx.Client(cookies=cookies, timeout=30) as client:
            barrier.wait()
            return client.post(url, data={"kind": "FULL"}, headers={"X-CSRFToken": csrf})

    with ThreadPoolExecutor(CLICKS) as pool:
        responses = list(pool.map(click, range(CLICKS)))

    assert [r.status_code for r in responses] == [302] * CLICKS, [
        (r.status_code, r.text[:300]) for r in responses if r.status_code != 302
    ]
    jobs = list(SyncJob.objects.filter(connector=connector))
    assert len(jobs) == 1
    to_job = [r for r in responses if r.headers["location"].endswith(f"/jobs/{jobs[0].pk}/")]
    assert len(to_job) == 1, [r.headers["location"] for r in responses]
    assert [t["args"] for t in enqueued_tasks()] == [[jobs[0].pk]]
    connection.close()


ROUNDS = 100
DUE = 10
DISPATCHERS = 2


@pytest.mark.django_db(transaction=True)
def test_racing_dispatchers_never_give_a_connector_two_jobs(org_a, clean_broker):
    """Two dispatchers tick at the same moment, a hundred times over the same ten due
    connectors: every due connector gets exactly one job per round, none gets two."""
    from datetime import timedelta

    from django.utils import timezone

    from connectors.models import Connector
    from syncjobs.scheduler import dispatch_due

    connectors = [
        make_connector(org_a, name=f"Due {n}", frequency=Connector.Frequency.EVERY_15_MINUTES)
        for n in range(DUE)
    ]
    ids = [c.pk for c in connectors]
    # The main thread resets the round between two barriers; each dispatcher keeps its own
    # database connection for the whole race (as a beat process does).
    start = threading.Barrier(DISPATCHERS + 1, timeout=60)
    done = threading.Barrier(DISPATCHERS + 1, timeout=60)
    results: dict[int, list] = {n: [] for n in range(DISPATCHERS)}
    failures = []

    def dispatcher(n):
        try:
            for _ in range(ROUNDS):
                start.wait()
                try:
                    results[n].append([job.connector_id for job in dispatch_due()])
                except Exception as exc:
                    failures.append(repr(exc))
                    results[n].append([])
                done.wait()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher, args=(n,)) for n in range(DISPATCHERS)]
    for thread in threads:
        thread.start()
    for round_number in range(ROUNDS):
        Connector.objects.filter(pk__in=ids).update(
            next_sync_at=timezone.now() - timedelta(seconds=1)
        )
        start.wait()
        done.wait()
        dispatched = [cid for n in results for cid in results[n][round_number]]
        assert not failures, failures
        assert sorted(dispatched) == sorted(ids), (round_number, dispatched)
        active = SyncJob.objects.filter(connector_id__in=ids, status="PENDING")
        assert active.count() == DUE, round_number
        # The round's jobs finish so the next round can dispatch again.
        active.update(status=SyncJob.Status.COMPLETED, finished_at=timezone.now())
    for thread in threads:
        thread.join(timeout=30)
    assert SyncJob.objects.filter(connector_id__in=ids).count() == ROUNDS * DUE
    # Every task on the broker names one job id, once.
    args = [t["args"] for t in enqueued_tasks()]
    assert len(args) == ROUNDS * DUE and all(len(a) == 1 for a in args)
    assert len({a[0] for a in args}) == ROUNDS * DUE
