"""No progress bar that says something false: none for a job that ended without processing a
record (a failed one showed a bar 14 % full)."""

from django.urls import reverse

from syncjobs.models import SyncJob

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


def test_the_estimate_weighs_types_by_their_records(alice_client, connector_a):
    """The complaint: "about 46 %" while the rows said otherwise, then a jump to 99 %. With
    1,000 articles done and 3,000 members (the previous full sync's size) not reached yet, the
    job is a quarter done, not "one of two types"."""
    job = make_job(
        connector_a,
        status="RUNNING",
        kind="FULL",
        current_entity_type="article",
        stats={"article": {"total": 1000, "processed": 1000}, "member": {"processed": 0}},
        expected_sizes={"article": 900, "member": 3000},
    )
    html = card(alice_client, job)
    assert "(about 25%)" in html
    assert '<progress max="100" value="25" aria-label="Entity types synced">' in html


def test_without_a_previous_size_the_estimate_is_a_share_per_type(alice_client, connector_a):
    job = make_job(
        connector_a,
        status="RUNNING",
        kind="FULL",
        current_entity_type="article",
        stats={"article": {"total": 1000, "processed": 500}, "member": {"processed": 0}},
    )
    assert "(about 25%)" in card(alice_client, job)  # half of the first of two types


def test_a_full_walk_expects_the_sizes_its_previous_full_walk_found(connector_a):
    from syncjobs.runner import expected_sizes

    make_job(connector_a, stats={"article": {"total": 7}, "member": {"total": 40}})
    # Newer, but none of these is a full walk of the whole connector: not a reference.
    make_job(connector_a, kind="INCREMENTAL", stats={"article": {"total": 1}})
    make_job(connector_a, dry_run=True, stats={"article": {"total": 99}})
    make_job(connector_a, scope={"entity_types": ["member"]}, stats={"member": {"total": 5}})
    make_job(connector_a, status="FAILED", stats={"article": {"total": 2}})
    full = make_job(connector_a, status="RUNNING")
    assert expected_sizes(full, ["article", "member", "event"]) == {"article": 7, "member": 40}
    # An incremental's size is what changed: nothing to expect (and no query for it).
    assert expected_sizes(SyncJob(connector=connector_a, kind="INCREMENTAL"), ["article"]) == {}
