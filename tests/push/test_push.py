"""Push from WordPress (docs §15): the receiving endpoint's refusals, the debounce, tenancy,
and the round trip with the simulator (its plugin side sends the signed POST on edits)."""

import json
import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from connectors.models import Connector
from connectors.wordpress import contract
from push import services, subscriptions
from push.models import PushChannel
from push.tasks import run_pushed_sync, start_pushed_sync
from syncjobs.models import SyncJob
from syncjobs.services import SyncAlreadyRunning, start_sync
from tests.conftest import make_connector
from tests.waiting import wait_until


@pytest.fixture
def enqueued(monkeypatch):
    """The pushed syncs the endpoint scheduled (connector ids), instead of Celery's queue."""
    calls = []
    monkeypatch.setattr(
        run_pushed_sync, "apply_async", lambda args, countdown: calls.append((args[0], countdown))
    )
    return calls


def post(connector, *, event="changes", secret=None, stamp=None, signature=None, url_id=None):
    body = json.dumps({"event": event}).encode()
    stamp = stamp or f"{time.time():.6f}"
    secret = secret or PushChannel.for_connector(connector).secret
    headers = {
        contract.PUSH_TIMESTAMP_HEADER: stamp,
        contract.PUSH_SIGNATURE_HEADER: signature or services.sign(secret, stamp, body),
    }
    url = reverse("push:receive", args=[url_id or connector.pk])
    return Client().post(url, body, content_type="application/json", headers=headers)


def test_a_signed_push_schedules_one_incremental_sync_after_the_debounce(
    connector_a, enqueued, django_capture_on_commit_callbacks, settings
):
    settings.PUSH_DEBOUNCE_SECONDS = 3
    with django_capture_on_commit_callbacks(execute=True):
        response = post(connector_a)
    assert response.status_code == 202, response.content
    assert enqueued == [(connector_a.pk, 3)]
    assert start_pushed_sync(connector_a.pk).startswith("job ")
    job = SyncJob.objects.get(connector=connector_a)
    assert (job.kind, job.trigger) == (SyncJob.Kind.INCREMENTAL, SyncJob.Trigger.PUSH)


def test_a_burst_of_fifty_saves_becomes_one_sync(
    connector_a, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answers = {post(connector_a).status_code for _ in range(50)}
    assert answers == {202}
    assert len(enqueued) == 1
    start_pushed_sync(connector_a.pk)
    assert SyncJob.objects.filter(connector=connector_a).count() == 1
    # Once that sync started, the next change schedules the next one.
    with django_capture_on_commit_callbacks(execute=True):
        post(connector_a)
    assert len(enqueued) == 2


def test_a_scheduled_sync_whose_message_was_lost_does_not_swallow_later_pushes(
    connector_a, enqueued, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    PushChannel.for_connector(connector_a)
    long_ago = timezone.now() - timedelta(minutes=10)
    PushChannel.objects.filter(connector=connector_a).update(sync_due_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(connector_a)
    assert response.json()["message"] == "Incremental sync scheduled."
    assert len(enqueued) == 1


def test_bad_signature_and_unknown_connector_are_refused_alike(connector_a, enqueued):
    PushChannel.for_connector(connector_a)
    forged = post(connector_a, secret="not-the-secret")
    unknown = post(connector_a, url_id=connector_a.pk + 1000)
    missing = post(connector_a, signature=" ")
    for response in (forged, unknown, missing):
        assert response.status_code == 404
        assert response.json()["message"] == "Unknown connector or invalid signature."
    assert enqueued == [] and not SyncJob.objects.exists()


def test_a_replayed_or_stale_push_is_refused(connector_a, enqueued):
    stamp = f"{time.time():.6f}"
    assert post(connector_a, stamp=stamp).status_code == 202
    replay = post(connector_a, stamp=stamp)
    assert replay.status_code == 409 and "Replayed" in replay.json()["message"]
    stale = post(connector_a, stamp=f"{time.time() - 3600:.6f}")
    assert stale.status_code == 401 and "clock" in stale.json()["message"]
    assert post(connector_a, stamp="yesterday").status_code == 400


def test_a_push_signed_for_another_organisations_connector_does_nothing(
    connector_a, connector_b, enqueued
):
    """Tenancy: the secret is per connector, so Globex's plugin cannot sync Acme's."""
    b_secret = PushChannel.for_connector(connector_b).secret
    response = post(connector_a, secret=b_secret)
    assert response.status_code == 404
    assert enqueued == []


def test_a_paused_connector_or_push_turned_off_ignores_pushes(connector_a, enqueued):
    Connector.objects.filter(pk=connector_a.pk).update(status=Connector.Status.PAUSED)
    response = post(connector_a)
    assert response.status_code == 202 and "paused" in response.json()["message"]
    Connector.objects.filter(pk=connector_a.pk).update(status=Connector.Status.ACTIVE)
    PushChannel.objects.filter(connector=connector_a).update(enabled=False)
    response = post(connector_a)
    assert response.status_code == 202 and "off" in response.json()["message"]
    assert enqueued == [] and not SyncJob.objects.exists()


def test_pushes_are_rate_limited_per_connector(connector_a, connector_b, enqueued, settings):
    settings.PUSH_RATE_LIMIT = 3
    assert [post(connector_a).status_code for _ in range(3)] == [202] * 3
    limited = post(connector_a)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert post(connector_b).status_code == 202  # another connector has its own budget


def test_the_test_event_answers_without_scheduling_a_sync(connector_a, enqueued):
    response = post(connector_a, event="test")
    assert response.status_code == 200 and response.json()["ok"] is True
    assert enqueued == []


def test_a_pushed_sync_waits_for_the_running_job(connector_a):
    """The running job may have read the site before the change: the task retries, and
    the push is not lost."""
    PushChannel.for_connector(connector_a)
    start_sync(connector_a, SyncJob.Kind.FULL)
    with pytest.raises(SyncAlreadyRunning):
        start_pushed_sync(connector_a.pk)


def test_push_is_on_by_default_and_an_admin_turns_it_off_in_settings(alice_client, connector_a):
    from audit.models import AuditEvent

    url = reverse("connectors:settings", args=["acme", connector_a.pk])
    page = alice_client.get(url).text
    [checkbox] = re.findall(r'<input[^>]*name="push_enabled"[^>]*>', page)
    assert "checked" in checkbox
    data = {
        "name": connector_a.name,
        "site_url": connector_a.site_url,
        "frequency": connector_a.frequency,
        "entity_types": connector_a.entity_types,
        "conflict_policy": connector_a.conflict_policy,
        "sync_direction": connector_a.sync_direction,
        "reconcile_frequency": connector_a.reconcile_frequency,
    }  # push_enabled unticked
    assert alice_client.post(url, data).status_code == 302
    assert PushChannel.objects.get(connector=connector_a).enabled is False
    event = AuditEvent.objects.get(connector=connector_a, action="UPDATED")
    assert event.changes == {"push_enabled": {"before": True, "after": False}}


def test_get_is_not_allowed(connector_a):
    assert Client().get(reverse("push:receive", args=[connector_a.pk])).status_code == 405


# --- with the simulator: the plugin side ---------------------------------------------------


@pytest.fixture
def sim():
    from wpsim import SimulatedSite, serve

    site = SimulatedSite(records=60, seed=3, key="push-test-sync-key-0123456789abcdef")
    with serve(site, host="127.0.0.1", port=0) as running:
        yield site, running


@pytest.mark.django_db(transaction=True)
def test_an_edit_on_the_site_reaches_the_platform_record(live_server, sim, settings, org_a):
    from connectors.wordpress_client import client_for
    from records.models import RECORD_MODELS
    from syncjobs.runner import run_job

    site, server = sim
    settings.PLATFORM_URL = live_server.url
    connector = make_connector(
        org_a, site_url=server.url, api_key=site.key, entity_types=["article"]
    )
    first = start_sync(connector, SyncJob.Kind.INITIAL)
    with client_for(connector) as client:
        run_job(first.pk, source=client)  # the runner subscribes the plugin before syncing
    channel = PushChannel.objects.get(connector=connector)
    assert channel.subscribed_url == subscriptions.push_url(connector)
    assert site.pusher.subscriptions == {channel.subscribed_url: channel.secret}

    [edited] = site.edit("article", 1)
    wait_until(
        lambda: PushChannel.objects.get(pk=channel.pk).sync_due_at is not None,
        timeout=10,
        what="the simulator's push",
    )
    start_pushed_sync(connector.pk)
    pushed = SyncJob.objects.filter(connector=connector, trigger=SyncJob.Trigger.PUSH).get()
    with client_for(connector) as client:
        run_job(pushed.pk, source=client)
    record = RECORD_MODELS["article"].objects.get(external_id=str(edited))
    assert "(edited " in record.title


@pytest.mark.django_db(transaction=True)
def test_the_connection_round_trip_reports_whether_the_site_reaches_the_platform(
    live_server, sim, settings, org_a
):
    from connectors.wordpress_client import client_for

    site, server = sim
    connector = make_connector(org_a, site_url=server.url, api_key=site.key)
    settings.PLATFORM_URL = live_server.url
    with client_for(connector) as client:
        assert subscriptions.subscribe(connector, client, test=True)["reachable"] is True
    assert PushChannel.objects.get(connector=connector).last_received_at is not None
    # A platform URL the site cannot reach: said, with the reason.
    settings.PLATFORM_URL = "http://127.0.0.1:9"
    with client_for(connector) as client:
        result = subscriptions.subscribe(connector, client, test=True)
    assert result["reachable"] is False and result["error"]


@pytest.mark.django_db(transaction=True)
def test_a_plugin_without_push_is_told_apart(settings, org_a):
    from connectors.wordpress_client import client_for
    from wpsim import SimulatedSite, serve

    settings.PLATFORM_URL = "https://platform.example.org"
    site = SimulatedSite(records=10, key="push-test-sync-key-0123456789abcdef", push=False)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(org_a, site_url=server.url, api_key=site.key)
        with client_for(connector, max_retries=0) as client:
            result = subscriptions.subscribe(connector, client)
    assert result["supported"] is False
    assert "does not support push" in result["error"]
    assert PushChannel.objects.get(connector=connector).subscribed_url == ""


@pytest.mark.django_db(transaction=True)
def test_the_connection_test_says_whether_the_site_reaches_the_platform(
    live_server, sim, settings, org_a
):
    from diagnostics import checks
    from diagnostics.runner import build_context

    site, server = sim
    connector = make_connector(org_a, site_url=server.url, api_key=site.key)

    def key_step():
        context = build_context(connector)
        try:
            results = checks.run_checks(context)
        finally:
            context.client.close()
        return next(r for r in results if r.key == "api_key")

    settings.PLATFORM_URL = live_server.url
    step = key_step()
    assert step.status == checks.PASS
    assert "The site reached the platform: its edits arrive within seconds" in step.message
    settings.PLATFORM_URL = "http://127.0.0.1:9"
    step = key_step()
    assert step.status == checks.PASS  # push is a speed-up: the connector works without it
    assert "could not notify the platform" in step.message
