"""The repair tools that fetch records by id, against the real plugin: retrying a job's failed
records and syncing one record by its WordPress id each ask the plugin for exactly those
records (its `include=` parameter, contract 1.2) in one request, and nothing else. Jobs run in
this process (services start them, runner.run_job runs them)."""

from datetime import timedelta

import pytest

from connectors.wordpress_client import client_for
from records.models import Article, Company
from syncjobs import services
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import run_job
from tests.conftest import make_connector
from tests.reliability.conftest import make_record

pytestmark = pytest.mark.wordpress


@pytest.fixture
def connector(org_a, real_wp, monkeypatch):
    # No Celery worker here: the test runs each job itself.
    monkeypatch.setattr("syncjobs.tasks.run_sync_job.delay", lambda *args, **kwargs: None)
    return make_connector(
        org_a,
        name="Real WordPress repairs",
        site_url=real_wp.url,
        api_key=real_wp.key,
        entity_types=["article", "company"],
    )


class Recorded:
    """The real client, with a note of every fetch by id it makes (the `include=` list
    request) and its count of HTTP requests."""

    def __init__(self, connector):
        self.client = client_for(connector, sleep=lambda seconds: None)
        self.fetched: list[tuple[str, list[int]]] = []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def fetch_changed(self, entity_type, ids, **options):
        self.fetched.append((entity_type, sorted(ids)))
        return self.client.fetch_changed(entity_type, ids, **options)


def run(job, source=None):
    finished = run_job(job.pk, source=source)
    assert finished is not None
    return finished


def run_recorded(job):
    """Runs the job with a Recorded client; returns the finished job and that client."""
    source = Recorded(job.connector)
    try:
        return run(job, source), source
    finally:
        source.client.close()


def rows(job):
    return list(
        SyncLogEntry.objects.filter(job=job)
        .order_by("external_id")
        .values_list("entity_type", "external_id", "operation", "status")
    )


def test_retry_fetches_only_the_failed_records_with_include(real_wp, org_a, connector):
    first = real_wp.create_post(post_title="Retry me first", post_name="retry-me-first")
    second = real_wp.create_post(post_title="Retry me second", post_name="retry-me-second")
    # The platform side breaks them: another connector of the organisation holds their slugs.
    other = make_connector(org_a, name="Older site", site_url="https://older.example.org")
    for n, slug in enumerate(("retry-me-first", "retry-me-second")):
        make_record("article", other, external_id=str(900001 + n), slug=slug)
    failed = run(services.start_sync(connector, SyncJob.Kind.FULL))
    assert failed.status == SyncJob.Status.COMPLETED, failed.error
    broken = SyncLogEntry.objects.filter(job=failed, status="FAILED")
    assert sorted(broken.values_list("external_id", flat=True)) == sorted([str(first), str(second)])
    assert all("duplicate slug" in error for error in broken.values_list("error", flat=True))
    assert failed.stats["company"]["failed"] == 0 and failed.stats["company"]["created"] > 0

    # Fixed on the platform: the older records give their slugs up.
    for article in Article.objects.filter(connector=other):
        article.slug += "-old"
        article.save()
    jobs = SyncJob.objects.count()
    retry, source = run_recorded(services.retry_failed(failed))

    assert retry.status == SyncJob.Status.COMPLETED, retry.error
    assert SyncJob.objects.count() == jobs + 1  # one job
    # One request to the plugin, for those two records only.
    assert source.fetched == [("article", sorted([first, second]))]
    assert source.client.request_count == 1
    assert rows(retry) == sorted(
        [
            ("article", str(first), "CREATE", "SUCCESS"),
            ("article", str(second), "CREATE", "SUCCESS"),
        ],
        key=lambda row: row[1],
    )
    assert Article.objects.get(connector=connector, external_id=str(first)).slug == "retry-me-first"
    assert set(retry.stats) == {"article"} and retry.stats["article"]["total"] == 2
    real_wp.php(f"<?php wp_delete_post( {first}, true ); wp_delete_post( {second}, true );")


def test_sync_one_record_by_its_wordpress_id_and_one_that_does_not_exist(real_wp, connector):
    company = real_wp.create_post(post_type="company", post_title="Synced alone", backdate=60)
    run(services.start_sync(connector, SyncJob.Kind.FULL))
    real_wp.update_post(company, post_title="Renamed, then synced alone")

    job, source = run_recorded(services.sync_record(connector, "company", company))

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.description == f"Sync of company {company}"
    assert rows(job) == [("company", str(company), "UPDATE", "SUCCESS")]
    assert Company.objects.get(external_id=str(company)).name == "Renamed, then synced alone"
    assert source.fetched == [("company", [company])] and source.client.request_count == 1

    # An id WordPress does not have: the job fails saying so, and nothing is stored.
    missing = run(services.sync_record(connector, "company", 987654))
    assert missing.status == SyncJob.Status.FAILED
    assert "WordPress has no company with id 987654" in missing.error
    assert not Company.objects.filter(external_id="987654").exists()
    real_wp.php(f"<?php wp_delete_post( {company}, true );")


def test_a_dismissed_conflict_stays_answered_until_wordpress_edits_the_record(
    real_wp, connector, alice
):
    """The version the answer records (fetched by id with `include=`) hashes as the version
    a full walk's list pages bring: the real plugin serves both alike."""
    from django.utils import timezone

    from syncjobs import conflicts
    from syncjobs.models import ConflictResolution

    post = real_wp.create_post(
        post_title="Answered once", post_content="<p>Body &amp; <em>markup</em></p>", backdate=120
    )
    run(services.start_sync(connector, SyncJob.Kind.FULL))
    real_wp.update_post(post, post_title="Changed in WordPress")
    Article.objects.filter(external_id=str(post)).update(
        title="Changed on the platform", platform_modified_at=timezone.now() + timedelta(hours=1)
    )
    job = run(services.start_sync(connector, SyncJob.Kind.FULL))
    (row,) = conflicts.unresolved(connector)
    assert (row.job_id, row.external_id) == (job.pk, str(post))

    done, _job, notes = conflicts.resolve(
        connector, [row.pk], ConflictResolution.Action.DISMISSED, user=alice
    )
    assert notes == [] and done[0].wordpress_hash
    again = run(services.start_sync(connector, SyncJob.Kind.FULL))
    entry = SyncLogEntry.objects.get(job=again, entity_type="article", external_id=str(post))
    assert (entry.operation, entry.status) == ("SKIP", "SKIPPED"), entry.error
    assert again.stats["article"]["conflicts"] == 0
    assert list(conflicts.unresolved(connector)) == []

    real_wp.update_post(post, post_title="Changed in WordPress again")
    later = run(services.start_sync(connector, SyncJob.Kind.FULL))
    entry = SyncLogEntry.objects.get(job=later, entity_type="article", external_id=str(post))
    assert entry.status == "CONFLICT"
    assert Article.objects.get(external_id=str(post)).title == "Changed on the platform"
    real_wp.php(f"<?php wp_delete_post( {post}, true );")
