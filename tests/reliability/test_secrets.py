"""The sync API key appears nowhere: not in any rendered page (every GET URL, as every kind
of user), not echoed back by a form, not in audit diffs, not in connection-test results,
not in Celery messages (which carry ids only), not in logs. (The client's own exception
messages are covered in test_properties.py, job errors, log rows and logs across a sync
with faults in test_faults.py.)"""

import logging

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from connectors.services import update_connector
from syncjobs.models import SyncJob
from syncjobs.services import start_sync
from tests.conftest import make_connector
from wpsim import SimulatedSite, serve

from .conftest import API_KEY_A, fill, object_values_for, project_urls
from .helpers import enqueued_tasks, purge_broker

NEW_KEY = "brand-new-secret-sync-key-77665544332211ffeeddccbbaa"


def assert_secret_free(text: str, where: str, *keys: str) -> None:
    for key in keys or (API_KEY_A,):
        assert key not in text, f"the API key appears in {where}"
        assert key[:12] not in text, f"a prefix of the API key appears in {where}"


@pytest.mark.django_db
def test_no_page_shows_the_key(populated, alice_client, root_client, caplog):
    caplog.set_level(logging.DEBUG)
    for route, *_ in project_urls():
        path = fill(route, object_values_for(route, populated))
        for http in (alice_client, root_client):
            for headers in ({}, {"HX-Request": "true"}):
                response = http.get(path, headers=headers)
                body = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                assert_secret_free(body.decode("utf-8", "replace"), path)
                assert_secret_free(str(response.headers), f"headers of {path}")
    # The Django admin's connector pages too (platform admins use them).
    for path in (
        reverse("admin:connectors_connector_changelist"),
        reverse("admin:connectors_connector_change", args=[populated["connector"].pk]),
    ):
        response = root_client.get(path)
        assert response.status_code == 200
        assert_secret_free(response.text, path)
        assert populated["connector"].api_key_encrypted not in response.text
    for record in caplog.records:
        assert_secret_free(record.getMessage(), f"log record {record.name}")


@pytest.mark.django_db
def test_forms_never_echo_a_typed_key(alice_client, connector_a, org_a):
    # An invalid settings POST re-renders the form: the new key must not come back.
    response = alice_client.post(
        reverse("connectors:settings", args=["acme", connector_a.pk]),
        {"name": connector_a.name, "site_url": "not a url", "api_key": NEW_KEY, "frequency": "1h"},
    )
    assert response.status_code == 200
    assert_secret_free(response.text, "settings form re-shown after an error", NEW_KEY)
    # Same for the create form.
    response = alice_client.post(
        reverse("connectors:create", args=["acme"]),
        {"name": "", "site_url": "https://wp.example.org", "api_key": NEW_KEY, "frequency": "1h"},
    )
    assert response.status_code == 200
    assert_secret_free(response.text, "create form re-shown after an error", NEW_KEY)


@pytest.mark.django_db
def test_audit_diff_of_a_key_change_is_redacted(alice, alice_client, connector_a):
    old_key = connector_a.api_key
    changes = update_connector(connector_a, user=alice, values={}, api_key=NEW_KEY)
    assert "api_key" in changes
    event = AuditEvent.objects.filter(connector=connector_a, action="UPDATED").latest("at")
    assert_secret_free(str(event.changes), "the audit diff", NEW_KEY, old_key)
    assert "api_key_encrypted" not in str(event.changes)
    page = alice_client.get(reverse("connectors:audit", args=["acme", connector_a.pk]))
    assert_secret_free(page.text, "the audit page", NEW_KEY, old_key)


@pytest.mark.django_db(transaction=True)
def test_enqueued_tasks_carry_ids_only(org_a, alice):
    purge_broker()
    connector = make_connector(org_a, api_key=NEW_KEY)
    job = start_sync(connector, SyncJob.Kind.FULL, user=alice)
    tasks = enqueued_tasks()
    purge_broker()
    assert [(t["task"], t["args"], t["kwargs"]) for t in tasks] == [
        ("syncjobs.tasks.run_sync_job", [job.pk], {"kind": "FULL"})  # for the queue router
    ]
    assert NEW_KEY.encode() not in tasks[0]["raw"]
    assert connector.api_key_encrypted.encode() not in tasks[0]["raw"]


@pytest.mark.django_db
def test_connection_test_with_a_wrong_key_does_not_quote_it(org_a, caplog):
    """Diagnostics against a site whose key was rotated: every step message, the test's error
    and the logs are free of both the stored key and the site's new key."""
    from diagnostics.models import ConnectionTest
    from diagnostics.runner import run_connection_test

    caplog.set_level(logging.DEBUG)
    site = SimulatedSite(records=14, seed=2, key=NEW_KEY)
    with serve(site) as server:
        connector = make_connector(org_a, site_url=server.url, api_key=API_KEY_A)
        test = ConnectionTest.objects.create(connector=connector)
        run_connection_test(test.pk)
    test.refresh_from_db()
    assert test.status == ConnectionTest.Status.FAILED
    texts = [test.error, str(test.steps)] + [r.getMessage() for r in caplog.records]
    for text in texts:
        assert_secret_free(text, "connection test results", API_KEY_A, NEW_KEY)
    assert any("key" in str(step.get("message", "")).lower() for step in test.steps)


@pytest.mark.django_db(transaction=True)
def test_every_kind_of_task_message_carries_ids_only(org_a, alice):
    """Beyond Run Full Sync: the scheduler's dispatch and the connection test also enqueue
    an id and nothing else; neither the key nor its ciphertext travels through Redis."""
    from datetime import datetime, timedelta
    from unittest.mock import ANY

    from django.utils import timezone

    from connectors.models import Connector
    from diagnostics.services import request_connection_test
    from syncjobs.scheduler import dispatch_due

    purge_broker()
    connector = make_connector(org_a, api_key=NEW_KEY, frequency=Connector.Frequency.HOURLY)
    Connector.objects.filter(pk=connector.pk).update(
        next_sync_at=timezone.now() - timedelta(seconds=1)
    )
    [job] = dispatch_due()
    test = request_connection_test(connector, user=alice)
    tasks = enqueued_tasks()
    purge_broker()
    # The scheduled run also carries when it was due (for the schedule-lag metric): a time,
    # not a secret; and its kind (for the queue router).
    assert sorted((t["task"], t["args"], t["kwargs"]) for t in tasks) == sorted(
        [
            ("syncjobs.tasks.run_sync_job", [job.pk], {"due_at": ANY, "kind": "INITIAL"}),
            ("diagnostics.tasks.run_connection_test", [test.pk], {}),
        ]
    )
    [sync_message] = [t for t in tasks if t["task"] == "syncjobs.tasks.run_sync_job"]
    assert datetime.fromisoformat(sync_message["kwargs"]["due_at"]) <= timezone.now()
    for task in tasks:
        assert NEW_KEY.encode() not in task["raw"]
        assert NEW_KEY[:12].encode() not in task["raw"]
        assert connector.api_key_encrypted.encode() not in task["raw"]
