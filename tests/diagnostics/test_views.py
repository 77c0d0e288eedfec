"""Diagnostics pages: tenancy, POST-only + CSRF, the panel's polling, the no-JS fallback."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import ConnectionTest
from tests.conftest import make_connector

STEPS_PASSED = [
    {
        "key": "reachable",
        "name": "HTTP reachable",
        "status": "pass",
        "message": "TCP ok",
        "duration_ms": 3,
    },
    {
        "key": "rest_root",
        "name": "REST API root",
        "status": "pass",
        "message": "index ok",
        "duration_ms": 12,
    },
    {
        "key": "plugin",
        "name": "Plugin installed",
        "status": "pass",
        "message": "401 ok",
        "duration_ms": 8,
    },
    {
        "key": "api_key",
        "name": "API key valid",
        "status": "pass",
        "message": "key ok",
        "duration_ms": 9,
    },
    {
        "key": "data",
        "name": "Data available",
        "status": "pass",
        "message": "article 3",
        "duration_ms": 1500,
    },
]


def urls(connector, org="acme"):
    args = [org, connector.pk]
    return {
        "status": reverse("diagnostics:connection_test", args=args),
        "run": reverse("diagnostics:run_connection_test", args=args),
        "mapping": reverse("diagnostics:mapping", args=args),
    }


@pytest.fixture
def quiet_connector(org_a):
    # No entity types: the mapping page renders without asking WordPress anything.
    return make_connector(org_a, name="Quiet", entity_types=[])


@pytest.mark.parametrize("page", ["status", "mapping"])
def test_pages_follow_tenancy(page, alice_client, bob_client, root_client, client, quiet_connector):
    url = urls(quiet_connector)[page]
    assert alice_client.get(url).status_code == 200
    assert bob_client.get(url).status_code == 404
    assert root_client.get(url).status_code == 200
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_other_organisations_connector_under_own_slug_is_404(alice_client, connector_b):
    for page in ("status", "mapping"):
        assert alice_client.get(urls(connector_b, org="acme")[page]).status_code == 404
    assert alice_client.post(urls(connector_b, org="acme")["run"]).status_code == 404
    assert alice_client.post(urls(connector_b, org="globex")["run"]).status_code == 404
    assert not ConnectionTest.objects.exists()


def test_outsider_cannot_start_a_test(bob_client, connector_a):
    assert bob_client.post(urls(connector_a)["run"]).status_code == 404
    assert not ConnectionTest.objects.exists()


def test_running_the_test_is_post_only(alice_client, connector_a):
    response = alice_client.get(urls(connector_a)["run"])
    assert response.status_code == 405
    assert not ConnectionTest.objects.exists()


def test_running_the_test_enforces_csrf(alice, connector_a):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post(urls(connector_a)["run"]).status_code == 403
    assert not ConnectionTest.objects.exists()


def test_post_creates_pending_test_and_enqueues_after_commit(
    alice_client, alice, connector_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice_client.post(urls(connector_a)["run"])
    assert response.status_code == 302
    assert response["Location"] == urls(connector_a)["status"]
    test = ConnectionTest.objects.get()
    assert test.status == ConnectionTest.Status.PENDING
    assert test.requested_by == alice
    assert len(callbacks) == 1  # the task is sent only once the row is committed


def test_double_click_returns_the_running_test(
    alice_client, connector_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alice_client.post(urls(connector_a)["run"])
        alice_client.post(urls(connector_a)["run"], HTTP_HX_REQUEST="true")
    assert ConnectionTest.objects.count() == 1
    assert len(callbacks) == 1


def test_htmx_post_returns_the_polling_panel(
    alice_client, connector_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = alice_client.post(urls(connector_a)["run"], HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.text
    assert 'id="connection-test-panel"' in html
    assert 'hx-trigger="every 3s"' in html
    assert f'hx-get="{urls(connector_a)["status"]}"' in html
    assert "Waiting for a worker" in html
    assert "<html" not in html  # a fragment, not a page


def _make_test(connector, **fields):
    return ConnectionTest.objects.create(connector=connector, **fields)


@pytest.mark.parametrize("status", [ConnectionTest.Status.PENDING, ConnectionTest.Status.RUNNING])
def test_panel_polls_while_unfinished(alice_client, connector_a, status):
    _make_test(connector_a, status=status, steps=STEPS_PASSED[:2])
    response = alice_client.get(urls(connector_a)["status"], HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 3s"' in response.text
    assert 'data-polling="true"' in response.text
    # Finished steps are shown; the others are listed as still to come.
    assert "index ok" in response.text
    assert 'data-status="pending"' in response.text and "Plugin installed" in response.text
    assert response.text.count('data-status="pending"') == 3
    # The button cannot start a second test meanwhile.
    assert "Testing…" in response.text


@pytest.mark.parametrize("status", [ConnectionTest.Status.PASSED, ConnectionTest.Status.FAILED])
def test_panel_stops_polling_when_finished(alice_client, connector_a, status):
    _make_test(connector_a, status=status, steps=STEPS_PASSED, finished_at=timezone.now())
    response = alice_client.get(urls(connector_a)["status"], HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in response.text.split("<form")[0]
    assert "every 3s" not in response.text
    assert "Test Connection" in response.text


def test_panel_stops_polling_for_an_abandoned_test(alice_client, connector_a):
    _make_test(
        connector_a,
        status=ConnectionTest.Status.PENDING,
        created_at=timezone.now() - ConnectionTest.STALE_AFTER - timedelta(seconds=1),
    )
    response = alice_client.get(urls(connector_a)["status"], HTTP_HX_REQUEST="true")
    assert "every 3s" not in response.text
    assert "Did not finish" in response.text
    assert "Celery worker is running" in response.text


def test_abandoned_test_does_not_block_a_new_one(
    alice_client, connector_a, django_capture_on_commit_callbacks
):
    old = _make_test(
        connector_a,
        status=ConnectionTest.Status.RUNNING,
        created_at=timezone.now() - ConnectionTest.STALE_AFTER - timedelta(seconds=1),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alice_client.post(urls(connector_a)["run"])
    old.refresh_from_db()
    assert old.status == ConnectionTest.Status.FAILED
    assert "worker" in old.error
    assert ConnectionTest.objects.filter(status=ConnectionTest.Status.PENDING).count() == 1
    assert len(callbacks) == 1


def test_result_shows_ticks_crosses_messages_durations_and_when(alice_client, alice, connector_a):
    steps = [dict(step) for step in STEPS_PASSED]
    steps[3].update(
        status="fail", message="The sync key is not valid <b>rotate</b>.", duration_ms=1500
    )
    steps[4].update(
        status="skipped",
        message="Skipped: “API key valid” failed, so this step cannot run.",
        duration_ms=0,
    )
    _make_test(
        connector_a,
        status=ConnectionTest.Status.FAILED,
        steps=steps,
        requested_by=alice,
        started_at=timezone.now() - timedelta(seconds=2),
        finished_at=timezone.now(),
    )
    html = alice_client.get(urls(connector_a)["status"]).text
    assert html.count('<span class="check-pass"><span class="visually-hidden">Passed:') == 3
    assert html.count('<span class="check-fail"><span class="visually-hidden">Failed:') == 1
    assert html.count('<span class="check-skipped"><span class="visually-hidden">Skipped:') == 1
    assert "&lt;b&gt;rotate&lt;/b&gt;" in html  # messages are escaped
    assert "1.5 s" in html and "12 ms" in html
    assert "Ran <time" in html and "by Alice" in html
    assert "Skipped: “API key valid” failed" in html
    assert urls(connector_a)["mapping"] in html


def test_no_js_page_refreshes_only_while_unfinished(alice_client, connector_a):
    test = _make_test(connector_a, status=ConnectionTest.Status.RUNNING)
    response = alice_client.get(urls(connector_a)["status"])
    assert response["Refresh"] == "3"
    assert "<html" in response.text
    test.status = ConnectionTest.Status.PASSED
    test.finished_at = timezone.now()
    test.save()
    assert "Refresh" not in alice_client.get(urls(connector_a)["status"])


def test_panel_without_any_test_invites_to_run_one(alice_client, connector_a):
    html = alice_client.get(urls(connector_a)["status"], HTTP_HX_REQUEST="true").text
    assert "Not tested yet" in html
    assert "every 3s" not in html
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html


def test_mapping_form_rejects_bad_input_without_calling_wordpress(alice_client, org_a):
    # site_url would not resolve: any request would fail the test loudly.
    connector = make_connector(org_a, name="Bad input", site_url="https://invalid.invalid")
    url = urls(connector)["mapping"]
    response = alice_client.get(url, {"entity_type": "article", "record_id": "abc"})
    assert response.status_code == 200
    assert "Enter a whole number." in response.text
    response = alice_client.get(url, {"record_id": "12"})
    assert "Choose the entity type of the record to check." in response.text
    response = alice_client.get(url, {"entity_type": "company", "record_id": "12"})
    assert "Select a valid choice." in response.text  # company is not enabled
    response = alice_client.get(url, {"entity_type": "article", "record_id": "0"})
    assert "greater than or equal to 1" in response.text


def test_key_location_is_spelled_like_the_plugin(alice_client):
    """Where the admin finds the key: the plugin's README and settings page say Settings →
    Association App → Sync; the create form and every message use the same path."""
    from pathlib import Path

    from connectors.wordpress.errors import PLUGIN_SETTINGS

    readme = (Path(__file__).resolve().parents[2] / "wordpress-plugin" / "README.md").read_text()
    assert "## Settings (Settings → Association App → Sync)" in readme
    assert PLUGIN_SETTINGS == "WP Admin → Settings → Association App → Sync"
    page = alice_client.get(reverse("connectors:create", args=["acme"])).text
    assert "Generate it in WP Admin → Settings → Association App → Sync" in page
