"""`/metrics`: the token, the exposition, and values that move when a real worker runs jobs.

The worker is a `celery worker` process (prefork, as in production) writing its values to a
PROMETHEUS_MULTIPROC_DIR that this process (the web side) scrapes: the same split as gunicorn
and Celery in docker-compose.yml.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connectors.models import Connector
from syncjobs import services
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.scheduler import dispatch_due
from tests.conftest import make_connector

from .conftest import SIM_KEY
from .test_worker import finished, running_worker, wait_for

TOKEN = "metrics-token-for-tests-0123456789"


def scrape(token=TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return Client().get("/metrics", **headers)


def samples(response) -> dict[tuple, float]:
    """{(sample name, frozenset of labels): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.django_db
def test_metrics_are_off_without_a_token(settings):
    settings.METRICS_TOKEN = ""
    assert scrape().status_code == 404
    assert scrape(None).status_code == 404


@pytest.mark.django_db
def test_metrics_answer_only_the_bearer_token(settings, org_a):
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""
    make_connector(org_a, name="Paused one", status=Connector.Status.PAUSED)

    for refused in (
        scrape(None),
        scrape("wrong-token"),
        scrape(TOKEN[:-1]),
        Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}"),
    ):
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in refused.content.decode()

    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in (
        "association_sync_jobs_total",
        "association_sync_job_duration_seconds",
        "association_sync_records_total",
        "association_connectors",
        "association_sync_schedule_lag_seconds",
        "association_sync_jobs_in_flight",
        "association_sync_drift",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    found = samples(response)
    assert value(found, "association_connectors", status="PAUSED") == 1
    assert value(found, "association_connectors", status="ACTIVE") == 0
    assert value(found, "association_sync_jobs_in_flight") == 0
    # No session needed, and a logged-in session is no substitute for the token.
    assert "Location" not in response


@pytest.mark.django_db(transaction=True)
def test_metrics_move_when_a_real_worker_runs_jobs(settings, tmp_path, org_a, site, server):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = str(metrics_dir)
    logs = tmp_path / "logs"
    logs.mkdir()
    connector = make_connector(
        org_a,
        name="Metered site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "conference"],
        frequency=Connector.Frequency.HOURLY,
    )
    before = samples(scrape())
    assert value(before, "association_sync_jobs_total", kind="FULL", status="COMPLETED") == 0
    assert value(before, "association_connectors", status="ACTIVE") == 1

    workers = running_worker(logs, pool="prefork", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    worker = next(workers)
    try:
        job = services.start_sync(connector, SyncJob.Kind.FULL)
        during = samples(scrape())
        assert value(during, "association_sync_jobs_in_flight") == 1
        wait_for(job, finished, worker=worker)
        assert job.status == SyncJob.Status.COMPLETED, job.error

        # A scheduled sync, due 90 s ago: its lag is measured from when it was due.
        Connector.objects.filter(pk=connector.pk).update(
            next_sync_at=timezone.now() - timedelta(seconds=90)
        )
        (scheduled,) = dispatch_due()
        wait_for(scheduled, finished, worker=worker)
        assert scheduled.status == SyncJob.Status.COMPLETED, scheduled.error
    finally:
        next(workers, None)  # stops the worker

    after = samples(scrape())
    # The full sync ended "Completed with N failures" (the simulator's bad members): counted
    # under its own status, not as a clean COMPLETED; the incremental after it had nothing
    # left to fail.
    job.refresh_from_db()
    scheduled.refresh_from_db()
    assert sum(counters["failed"] for counters in job.stats.values()) > 0
    assert sum(counters["failed"] for counters in scheduled.stats.values()) == 0
    partial = "COMPLETED_WITH_FAILURES"
    assert value(after, "association_sync_jobs_total", kind="FULL", status=partial) == 1
    assert value(after, "association_sync_jobs_total", kind="FULL", status="COMPLETED") == 0
    assert value(after, "association_sync_jobs_total", kind="INCREMENTAL", status="COMPLETED") == 1
    assert value(after, "association_sync_jobs_total", kind="INCREMENTAL", status=partial) == 0
    assert value(after, "association_sync_job_duration_seconds_count", kind="FULL") == 1
    assert value(after, "association_sync_job_duration_seconds_sum", kind="FULL") > 0
    # Every log row of the full sync is counted once, under its own labels.
    created = SyncLogEntry.objects.filter(
        job=job, entity_type="member", operation="CREATE", status="SUCCESS"
    ).count()
    assert created > 0
    assert (
        value(
            after,
            "association_sync_records_total",
            entity_type="member",
            operation="CREATE",
            status="SUCCESS",
        )
        == created
    )
    failed = SyncLogEntry.objects.filter(job=job, entity_type="member", status="FAILED").count()
    assert failed == site.bad_count("member") > 0
    assert (
        value(
            after,
            "association_sync_records_total",
            entity_type="member",
            operation="CREATE",
            status="FAILED",
        )
        == failed
    )
    assert value(after, "association_sync_schedule_lag_seconds_count") == 1
    assert value(after, "association_sync_schedule_lag_seconds_sum") >= 90
    assert value(after, "association_sync_schedule_lag_seconds_bucket", le="60.0") == 0
    assert value(after, "association_sync_jobs_in_flight") == 0


@pytest.mark.django_db
def test_drift_a_reconciliation_repairs_is_counted(settings, site, connector, sync):
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = ""  # this process's own counters: the job runs here
    sync(connector)
    before = value(samples(scrape()), "association_sync_drift_total")
    clean = sync(connector, SyncJob.Kind.RECONCILE)
    assert clean.drift == 0
    assert value(samples(scrape()), "association_sync_drift_total") == before
    article = next(i for i in site.ids("article") if i not in site.bad_ids("article"))
    site.tamper("article", article, title="Changed behind the plugin's back")

    job = sync(connector, SyncJob.Kind.RECONCILE)

    assert job.drift == 1
    assert value(samples(scrape()), "association_sync_drift_total") == before + 1
