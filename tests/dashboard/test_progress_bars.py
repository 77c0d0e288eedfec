"""No progress bar that says something false: none for a job that ended without processing a
record (a failed one showed a bar 14 % full)."""

from django.urls import reverse

from .conftest import make_job


def card(client, job):
    url = reverse("syncjobs:status", args=["acme", job.connector_id, job.pk])
    return client.get(url, HTTP_HX_REQUEST="true").text


def test_a_failed_job_that_did_nothing_has_no_bar(alice_client, connector_a):
    job = make_job(
        connector_a,
        status="FAILED",
        error="HTTP 401",
        current_entity_type="article",
        stats={"article": {"total": 0, "processed": 0}, "member": {"processed": 0}},
    )
    html = card(alice_client, job)
    assert "<progress" not in html.split("<table")[0]  # the job's bar; the types' rows are 0 / 0
    assert "No record was processed." in html


def test_a_completed_job_with_nothing_to_sync_has_no_bar(alice_client, connector_a):
    job = make_job(connector_a, stats={"article": {"total": 0, "processed": 0}})
    html = card(alice_client, job)
    assert "<progress" not in html.split("<table")[0]
    assert "Nothing to sync." in html


def test_a_completed_job_fills_its_bar(alice_client, connector_a):
    job = make_job(connector_a, stats={"article": {"total": 8, "processed": 8}})
    assert '<progress max="8" value="8" aria-label="Records processed">100%' in card(
        alice_client, job
    )
