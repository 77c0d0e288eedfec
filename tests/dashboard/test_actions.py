"""Actions are POST-only, CSRF-protected, give feedback and leave an audit event."""

from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from connectors.models import Connector
from records.models import Article
from syncjobs.models import SyncJob

from .conftest import make_job


def action_urls(connector, job):
    org, c = connector.organisation.slug, connector.pk
    return [
        reverse("connectors:sync", args=[org, c]),
        reverse("connectors:pause", args=[org, c]),
        reverse("connectors:resume", args=[org, c]),
        reverse("syncjobs:cancel", args=[org, c, job.pk]),
    ]


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_actions_refuse_get(alice_client, connector_a):
    job = make_job(connector_a, status="RUNNING")
    for url in action_urls(connector_a, job):
        assert alice_client.get(url).status_code == 405, url
    assert SyncJob.objects.get(pk=job.pk).status == "RUNNING"
    assert Connector.objects.get(pk=connector_a.pk).status == "ACTIVE"


def test_actions_require_the_csrf_token(alice, connector_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    job = make_job(connector_a, status="RUNNING")
    for url in action_urls(connector_a, job):
        assert client.post(url, {"kind": "FULL"}).status_code == 403, url
    settings_url = reverse("connectors:settings", args=["acme", connector_a.pk])
    assert client.post(settings_url, {"name": "x"}).status_code == 403


def test_htmx_post_with_csrf_header_is_accepted(alice, connector_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get(reverse("connectors:detail", args=["acme", connector_a.pk]))
    token = page.cookies["csrftoken"].value
    # base.html puts the token in hx-headers on <body>; htmx sends it as X-CSRFToken.
    assert "X-CSRFToken" in page.text
    response = client.post(
        reverse("connectors:pause", args=["acme", connector_a.pk]),
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 302
    assert Connector.objects.get(pk=connector_a.pk).status == "PAUSED"


def test_outsider_cannot_act(bob_client, connector_a):
    job = make_job(connector_a, status="RUNNING")
    for url in action_urls(connector_a, job):
        assert bob_client.post(url, {"kind": "FULL"}).status_code == 404, url
    assert (
        bob_client.post(
            reverse("connectors:delete", args=["acme", connector_a.pk]),
            {"confirm_name": connector_a.name},
        ).status_code
        == 404
    )
    assert Connector.objects.filter(pk=connector_a.pk, status="ACTIVE").exists()


def test_run_full_sync_queues_a_job_after_commit(
    alice_client, alice, connector_a, django_capture_on_commit_callbacks
):
    with (
        mock.patch("syncjobs.tasks.run_sync_job.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = alice_client.post(
            reverse("connectors:sync", args=["acme", connector_a.pk]), {"kind": "FULL"}
        )
    job = SyncJob.objects.get(connector=connector_a)
    delay.assert_called_once_with(job.pk, kind="FULL")  # the kind: for the queue router
    assert job.kind == "FULL" and job.status == "PENDING" and job.triggered_by == alice
    assert response["Location"] == job.get_absolute_url()
    assert messages_of(response) == [f"Full sync queued (job #{job.pk})."]
    event = AuditEvent.objects.get(connector=connector_a, action="SYNC_TRIGGERED")
    assert event.actor == alice and event.changes["job"] == job.pk


def test_second_sync_is_refused_with_the_services_message(alice_client, connector_a):
    running = make_job(connector_a, status="RUNNING")
    with mock.patch("syncjobs.tasks.run_sync_job.delay"):
        response = alice_client.post(
            reverse("connectors:sync", args=["acme", connector_a.pk]), {"kind": "FULL"}, follow=True
        )
    assert SyncJob.objects.filter(connector=connector_a).count() == 1
    assert f"A sync is already running for this connector (job #{running.pk}" in response.text


def test_initial_import_button_only_before_the_first_import(alice_client, connector_a):
    url = reverse("connectors:detail", args=["acme", connector_a.pk])
    assert "Run Initial Import" in alice_client.get(url).text
    Connector.objects.filter(pk=connector_a.pk).update(initial_import_done_at=timezone.now())
    assert "Run Initial Import" not in alice_client.get(url).text
    response = alice_client.post(
        reverse("connectors:sync", args=["acme", connector_a.pk]), {"kind": "INITIAL"}, follow=True
    )
    assert "The initial import already completed" in response.text
    assert not SyncJob.objects.filter(connector=connector_a).exists()


def test_initial_import_is_not_offered_after_a_completed_sync(alice_client, connector_a):
    """A completed full or scheduled sync imported everything: no "initial" import after it,
    even when a later sync failed."""
    url = reverse("connectors:detail", args=["acme", connector_a.pk])
    make_job(connector_a, status="FAILED")
    assert "Run Initial Import" in alice_client.get(url).text
    make_job(connector_a, status="COMPLETED", kind=SyncJob.Kind.INCREMENTAL)
    page = alice_client.get(url).text
    assert "Run Initial Import" not in page
    assert "Done by a regular sync" in page
    make_job(connector_a, status="FAILED")
    assert "Run Initial Import" not in alice_client.get(url).text


def test_unknown_sync_kind_is_refused(alice_client, connector_a):
    response = alice_client.post(
        reverse("connectors:sync", args=["acme", connector_a.pk]), {"kind": "DROP"}, follow=True
    )
    assert "Choose Run Full Sync or Run Initial Import." in response.text
    assert not SyncJob.objects.exists()


def test_pause_and_resume_record_audit_events(alice_client, alice, connector_a):
    pause = reverse("connectors:pause", args=["acme", connector_a.pk])
    resume = reverse("connectors:resume", args=["acme", connector_a.pk])
    response = alice_client.post(pause)
    connector = Connector.objects.get(pk=connector_a.pk)
    assert connector.status == "PAUSED" and connector.next_sync_at is None
    assert "Sync paused" in messages_of(response)[0]
    # Pausing twice is refused with a message, and records nothing.
    assert messages_of(alice_client.post(pause))[-1] == f"{connector.name} is already paused."

    page = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    assert "Resume Sync" in page and "Pause Sync" not in page

    alice_client.post(resume)
    connector.refresh_from_db()
    assert connector.status == "ACTIVE"
    assert connector.next_sync_at is not None  # hourly: rescheduled from now
    actions = list(
        AuditEvent.objects.filter(connector=connector_a)
        .order_by("at")
        .values_list("action", flat=True)
    )
    assert actions == ["PAUSED", "RESUMED"]
    audit_page = alice_client.get(reverse("connectors:audit", args=["acme", connector_a.pk])).text
    assert "paused syncing" in audit_page and "resumed syncing" in audit_page


def test_cancel_pending_job(alice_client, alice, connector_a):
    job = make_job(connector_a, status="PENDING")
    response = alice_client.post(reverse("syncjobs:cancel", args=["acme", connector_a.pk, job.pk]))
    job.refresh_from_db()
    assert job.status == "CANCELLED"
    assert messages_of(response) == [f"Job #{job.pk} cancelled."]
    event = AuditEvent.objects.get(action="SYNC_CANCELLED")
    assert event.actor == alice and event.changes["job"] == job.pk


def test_cancel_running_job_requests_a_stop(alice_client, connector_a):
    job = make_job(connector_a, status="RUNNING")
    response = alice_client.post(reverse("syncjobs:cancel", args=["acme", connector_a.pk, job.pk]))
    job.refresh_from_db()
    assert job.status == "RUNNING" and job.cancel_requested_at is not None
    assert "Cancellation requested" in messages_of(response)[0]
    page = alice_client.get(job.get_absolute_url()).text
    assert "Cancellation requested…" in page


def test_cancel_finished_job_is_refused(alice_client, connector_a):
    job = make_job(connector_a, status="COMPLETED")
    response = alice_client.post(reverse("syncjobs:cancel", args=["acme", connector_a.pk, job.pk]))
    assert messages_of(response) == [f"Job #{job.pk} already finished (completed)."]


def test_delete_asks_for_confirmation_and_keeps_records(alice_client, alice, org_a, connector_a):
    record = Article.objects.create(
        organisation=org_a, connector=connector_a, external_id="1", title="Keep me"
    )
    make_job(connector_a)
    url = reverse("connectors:delete", args=["acme", connector_a.pk])
    page = alice_client.get(url)
    assert "The <strong>1</strong> record it imported stays on the platform" in page.text
    assert "its sync history: <strong>1</strong> job and its log." in page.text

    # A wrong name: the error beside the field, what was typed kept to spot the typo.
    wrong = alice_client.post(url, {"confirm_name": "acme association site"})
    assert wrong.status_code == 400 and Connector.objects.filter(pk=connector_a.pk).exists()
    assert (
        '<p class="field-error" id="confirm_name_error">This does not match the connector'
        "&#x27;s name: type “Acme Association site” exactly" in wrong.text
    )
    assert 'value="acme association site"' in wrong.text
    assert 'aria-describedby="confirm_name_error"' in wrong.text

    response = alice_client.post(url, {"confirm_name": connector_a.name})
    assert response["Location"] == reverse("connectors:list", args=["acme"])
    assert not Connector.objects.filter(pk=connector_a.pk).exists()
    assert not SyncJob.objects.exists()
    record.refresh_from_db()
    assert record.connector is None
    event = AuditEvent.objects.get(action="DELETED")
    assert event.connector is None and event.connector_name == connector_a.name
    assert event.actor == alice


def test_delete_of_a_connector_that_never_synced_says_so(alice_client, connector_a):
    page = alice_client.get(reverse("connectors:delete", args=["acme", connector_a.pk])).text
    assert "It has not imported any records." in page
    assert "sync history" not in page and "0</strong> record" not in page


def test_delete_is_refused_while_a_job_runs(alice_client, connector_a):
    make_job(connector_a, status="RUNNING")
    response = alice_client.post(
        reverse("connectors:delete", args=["acme", connector_a.pk]),
        {"confirm_name": connector_a.name},
        follow=True,
    )
    assert "Cancel it and wait for it to stop" in response.text
    assert Connector.objects.filter(pk=connector_a.pk).exists()


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_refused(alice_client, connector_a, method):
    url = reverse("connectors:settings", args=["acme", connector_a.pk])
    assert getattr(alice_client, method)(url).status_code == 405


def test_platform_admin_can_act_and_is_named_in_the_audit_log(root_client, root, connector_a):
    root_client.post(reverse("connectors:pause", args=["acme", connector_a.pk]))
    assert Connector.objects.get(pk=connector_a.pk).status == "PAUSED"
    event = AuditEvent.objects.get(action="PAUSED")
    assert event.actor == root and event.organisation_id == connector_a.organisation_id
    audit = root_client.get(reverse("connectors:audit", args=["acme", connector_a.pk])).text
    assert "<strong>root</strong>" in audit
