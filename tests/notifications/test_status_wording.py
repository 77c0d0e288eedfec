"""Status that tells the truth: last attempt vs last success, "Completed with N failures",
record-level success, cancelled-before-start is no failure, a retry under way is shown."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from connectors.models import Connector
from syncjobs.models import SyncJob
from tests.dashboard.conftest import make_job


def flat(response):
    return re.sub(r"\s+", " ", response.content.decode())


def with_failures(failed, processed=100):
    return {"article": {"total": processed, "processed": processed, "failed": failed}}


def test_a_job_completed_with_failed_records_is_not_plain_green(alice_client, connector_a):
    job = make_job(connector_a, stats=with_failures(3))
    overview = flat(alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])))
    history = flat(alice_client.get(reverse("connectors:history", args=["acme", connector_a.pk])))
    listing = flat(alice_client.get(reverse("connectors:list", args=["acme"])))
    job_page = flat(
        alice_client.get(reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk]))
    )
    badge = '<span class="badge badge-pending badge-wrap">Completed with 3 failures</span>'
    for page in (overview, history, listing, job_page):
        assert badge in page
        assert '<span class="badge badge-completed">Completed</span>' not in page


def test_one_failure_is_singular_and_a_clean_job_is_green(alice_client, connector_a):
    make_job(connector_a, stats=with_failures(0), created_at=timezone.now() - timedelta(hours=1))
    make_job(connector_a, stats=with_failures(1))
    history = flat(alice_client.get(reverse("connectors:history", args=["acme", connector_a.pk])))
    assert "Completed with 1 failure<" in history
    assert '<span class="badge badge-completed">Completed</span>' in history


def test_last_attempt_and_last_successful_sync_are_told_apart(alice_client, connector_a):
    good = make_job(connector_a, created_at=timezone.now() - timedelta(hours=3))
    SyncJob.objects.filter(pk=good.pk).update(finished_at=timezone.now() - timedelta(hours=3))
    failed = make_job(connector_a, status=SyncJob.Status.FAILED, error="The key was refused.")
    overview = flat(alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])))
    assert re.search(
        rf"<dt>Last attempt</dt><dd><span class=\"badge badge-failed\">Failed</span> "
        rf"<a href=\"[^\"]+\" class=\"nowrap\">Full sync #{failed.pk}</a>",
        overview,
    )
    assert re.search(
        rf"<dt>Last successful sync</dt><dd><a href=\"[^\"]+\">"
        rf"Full sync #{good.pk}</a><br><time [^>]+>3 hours ago</time>",
        overview,
    )
    listing = flat(alice_client.get(reverse("connectors:list", args=["acme"])))
    assert re.search(r'data-label="Last attempt:"><span class="badge badge-failed">Failed', listing)
    assert re.search(r'data-label="Last success:"><time [^>]+>3 hours ago</time>', listing)


def test_never_succeeded_says_never(alice_client, connector_a):
    make_job(connector_a, status=SyncJob.Status.FAILED)
    overview = flat(alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])))
    assert '<dt>Last successful sync</dt><dd><span class="muted">Never</span>' in overview


def test_success_rate_counts_records_and_ignores_jobs_cancelled_before_they_started(
    alice_client, connector_a
):
    make_job(connector_a, stats=with_failures(10, processed=100))
    make_job(connector_a, stats=with_failures(0, processed=300))
    make_job(connector_a, status=SyncJob.Status.FAILED, stats=with_failures(0, processed=0))
    make_job(connector_a, status=SyncJob.Status.CANCELLED, started_at=None)
    overview = flat(alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])))
    # 2 of 3 jobs that ran; 390 of 400 records.
    assert '<span class="stat-value">67%</span><span class="stat-label">Jobs completed</span>' in (
        overview
    )
    assert (
        '<span class="stat-value">97.5%</span>'
        '<span class="stat-label">Records imported without error</span>'
    ) in overview
    assert "last 3 finished jobs" in overview
    history = flat(alice_client.get(reverse("connectors:history", args=["acme", connector_a.pk])))
    assert "Cancelled before it started" in history


def test_an_error_connector_whose_new_sync_runs_shows_the_retry(alice_client, connector_a):
    Connector.objects.filter(pk=connector_a.pk).update(
        status=Connector.Status.ERROR, status_message="Last sync (job #1) failed: key refused."
    )
    overview = flat(alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])))
    assert '<p class="form-error" role="alert">Last sync (job #1) failed: key refused.</p>' in (
        overview
    )
    make_job(connector_a, status=SyncJob.Status.RUNNING, finished_at=None)
    overview = flat(alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])))
    assert (
        '<p class="retrying" role="status"><strong>Retrying:</strong> a new sync is under way '
        "after the last one failed. Last sync (job #1) failed: key refused.</p>"
    ) in overview
    assert 'class="form-error"' not in overview
