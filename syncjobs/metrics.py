"""Prometheus metrics of the sync: what they are, where they are recorded, and `/metrics`.

Counters and histograms are recorded by the process that runs the job (a Celery worker, or
whoever calls runner.run_job): `job_finished()` from runner.finish, `job_started()` from
runner.run_job. Under gunicorn and Celery prefork every process has its own values; with
PROMETHEUS_MULTIPROC_DIR set (before the process starts) prometheus-client writes them to
files in that directory and the scrape sums every process's files. Gauges are not kept in
processes at all: `association_connectors` and `association_sync_jobs_in_flight` are counted
in the database at scrape time, so they are right whichever process is asked and whatever
process died meanwhile.

`/metrics` is off (404) unless METRICS_TOKEN is set, and then answers only a request with
`Authorization: Bearer <token>` (401 otherwise). See docs/metrics.md.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from connectors.models import Connector
from syncjobs.models import SyncJob, SyncLogEntry

logger = logging.getLogger(__name__)

JOBS = Counter(
    "association_sync_jobs",
    "Sync jobs that ended, by kind and terminal status.",
    ["kind", "status"],
)
JOB_DURATION = Histogram(
    "association_sync_job_duration_seconds",
    "Seconds from a job's start to its end, by kind.",
    ["kind"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
RECORDS = Counter(
    "association_sync_records",
    "Records a sync logged, by entity type, operation and status (one per record per job).",
    ["entity_type", "operation", "status"],
)
DRIFT = Counter(
    "association_sync_drift",
    "Changes the incremental syncs missed, found and repaired by reconciliations "
    "(each reconciliation's SyncJob.drift): should stay at zero.",
)
SCHEDULE_LAG = Histogram(
    "association_sync_schedule_lag_seconds",
    "Seconds from when a scheduled sync was due to when a worker started it.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)


def job_started(job, due_at: datetime | None) -> None:
    """A scheduled job was claimed: how late it started against the time it was due."""
    if due_at is None or job.started_at is None:
        return
    SCHEDULE_LAG.observe(max(0.0, (job.started_at - due_at).total_seconds()))


# The status label of a job that COMPLETED while some of its records failed: the job page's
# "Completed with N failures". Its own label, so "jobs that did everything" stays COMPLETED
# and an alert on partial syncs needs no second metric.
COMPLETED_WITH_FAILURES = "COMPLETED_WITH_FAILURES"


def job_status_label(job) -> str:
    """The job's terminal status, or COMPLETED_WITH_FAILURES. Reads the stats the engine
    saved (the runner's copy of the job predates them): one query, and only when COMPLETED."""
    from syncjobs.models import SyncJob

    if job.status != SyncJob.Status.COMPLETED:
        return job.status
    stats = SyncJob.objects.filter(pk=job.pk).values_list("stats", flat=True).first() or {}
    failed = sum(
        counters.get("failed") or 0 for counters in stats.values() if isinstance(counters, dict)
    )
    return COMPLETED_WITH_FAILURES if failed else job.status


def job_finished(job) -> None:
    """A job ended (called once, by whoever ended it). Never raises: metrics must not turn a
    finished sync into a failed one."""
    try:
        JOBS.labels(kind=job.kind, status=job_status_label(job)).inc()
        if job.started_at and job.finished_at:
            seconds = (job.finished_at - job.started_at).total_seconds()
            JOB_DURATION.labels(kind=job.kind).observe(max(0.0, seconds))
        if job.drift:  # set by the runner before the job ends (None: no drift counted)
            DRIFT.inc(job.drift)
        # The log has exactly one row per record per job: counting its rows counts what
        # the job did, including the rows a later page replaced (counted once).
        rows = (
            SyncLogEntry.objects.filter(job_id=job.pk)
            .values_list("entity_type", "operation", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for entity_type, operation, status, n in rows:
            RECORDS.labels(entity_type=entity_type, operation=operation, status=status).inc(n)
    except Exception:
        logger.warning("could not record the metrics of job %s", job.pk, exc_info=True)


class DatabaseCollector:
    """The gauges, counted in the database at scrape time."""

    def collect(self):
        connectors = GaugeMetricFamily(
            "association_connectors", "Connectors by status.", labels=["status"]
        )
        counts = dict(Connector.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in Connector.Status.values:
            connectors.add_metric([status], counts.get(status, 0))
        yield connectors
        yield GaugeMetricFamily(
            "association_sync_jobs_in_flight",
            "Sync jobs pending or running now.",
            value=SyncJob.objects.filter(status__in=SyncJob.ACTIVE_STATUSES).count(),
        )
        yield GaugeMetricFamily(
            "association_metrics_scraped_at_seconds",
            "When this scrape was answered (Unix time), to tell a stale scrape from a quiet one.",
            value=timezone.now().timestamp(),
        )


def registry() -> CollectorRegistry:
    """Every process's counters (multiprocess) or this process's, plus the gauges."""
    scrape = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(scrape, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        for collector in (JOBS, JOB_DURATION, RECORDS, DRIFT, SCHEDULE_LAG):
            scrape.register(collector)
    scrape.register(DatabaseCollector())
    return scrape


def _authorised(request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Constant time, so the token cannot be guessed byte by byte from response times.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.METRICS_TOKEN.encode()
    )


@require_GET
def metrics_view(request):
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: set METRICS_TOKEN to turn them on.")
    if not _authorised(request):
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
