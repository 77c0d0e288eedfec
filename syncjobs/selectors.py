"""Read-side queries of sync jobs and their log for the pages of other apps (the connector
list, a connector's Overview, Sync History and Activity, the organisation's Activity): the
log's filters, the activity feed that interleaves log rows with job events, the job lists and
the figures drawn from recent jobs."""

import uuid
from datetime import timedelta
from math import floor

from django.db.models import OuterRef, Subquery

from connectors.models import Connector
from records.models import EntityType
from syncjobs.conflicts import unresolved as unresolved_conflicts
from syncjobs.deletion_guard import pending as pending_held
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.progress import job_progress
from web.pagination import keyset_page, parse_id

ACTIVITY_PAGE_SIZE = 50
# Success rate and average duration are measured over this many recent finished jobs.
RECENT_JOBS = 20


class LogFilters:
    """The job log's filters, read from the query string; unknown values are ignored."""

    def __init__(self, params):
        self.entity_type = params.get("entity_type", "")
        if self.entity_type not in EntityType.values:
            self.entity_type = ""
        self.operation = params.get("operation", "")
        if self.operation not in SyncLogEntry.Operation.values:
            self.operation = ""
        self.status = params.get("status", "")
        if self.status not in SyncLogEntry.Status.values:
            self.status = ""
        # "failed" counts the records a sync could not store, not the pushes WordPress
        # refused (push_failed): the card's link to them leaves SYNC rows out.
        self.not_operation = params.get("not_operation", "")
        if self.not_operation not in SyncLogEntry.Operation.values:
            self.not_operation = ""
        self.q = (params.get("q") or "").replace("\x00", "").strip()[:64]

    @property
    def active(self) -> bool:
        return bool(
            self.entity_type or self.operation or self.not_operation or self.status or self.q
        )

    def apply(self, queryset):
        if self.entity_type:
            queryset = queryset.filter(entity_type=self.entity_type)
        if self.operation:
            queryset = queryset.filter(operation=self.operation)
        if self.not_operation:
            queryset = queryset.exclude(operation=self.not_operation)
        if self.status:
            queryset = queryset.filter(status=self.status)
        if self.q:
            # A UUID is the platform's internal id; anything else the WordPress id
            # (exact match: log_job_external_idx serves it).
            try:
                queryset = queryset.filter(internal_id=uuid.UUID(self.q))
            except ValueError:
                queryset = queryset.filter(external_id=self.q)
        return queryset


def log_filter_choices() -> dict:
    """The choices of the log filters' selects (the job page's and the activity feed's)."""
    return {
        "entity_types": EntityType.choices,
        "operations": SyncLogEntry.Operation.choices,
        "statuses": SyncLogEntry.Status.choices,
    }


def with_latest_jobs(connectors):
    """The connector list's rows: each connector with its last finished job's status, times
    and stats, and its running job's status (one subquery each, no query per row)."""
    jobs = SyncJob.objects.filter(connector=OuterRef("pk")).order_by("-created_at", "-id")
    finished = jobs.filter(status__in=SyncJob.TERMINAL_STATUSES)
    return connectors.annotate(
        last_job_status=Subquery(finished.values("status")[:1]),
        last_job_finished_at=Subquery(finished.values("finished_at")[:1]),
        last_job_stats=Subquery(finished.values("stats")[:1]),
        last_job_started_at=Subquery(finished.values("started_at")[:1]),
        active_job_status=Subquery(
            jobs.filter(status__in=SyncJob.ACTIVE_STATUSES).values("status")[:1]
        ),
    )


def connector_status(connector) -> dict:
    """What a connector's Overview status card shows: two queries (latest job, latest
    finished job), and one EXISTS at most."""
    latest = connector.jobs.select_related("triggered_by").first()
    active = latest if latest is not None and latest.is_active else None
    if latest is not None and latest.is_terminal:
        last_finished = latest
    else:
        last_finished = (
            connector.jobs.filter(status__in=SyncJob.TERMINAL_STATUSES)
            .select_related("triggered_by")
            .first()
        )
    # "Run Initial Import" is offered only before the first import. A completed full or
    # scheduled sync imports everything too (the demo's first sync is a scheduled one): after
    # one, offering an "initial" import would only confuse. One EXISTS at most, and only when
    # the latest finished job did not complete.
    imported = bool(connector.initial_import_done_at) or (
        last_finished is not None
        and (
            (last_finished.status == SyncJob.Status.COMPLETED and not last_finished.is_partial)
            # A preview or a repair job imports nothing whole (syncjobs.services).
            or connector.jobs.filter(
                status=SyncJob.Status.COMPLETED, scope={}, dry_run=False
            ).exists()
        )
    )
    if (
        last_finished is not None
        and last_finished.status == SyncJob.Status.COMPLETED
        and not last_finished.dry_run  # a preview writes nothing: no successful sync
    ):
        last_success = last_finished
    else:
        last_success = connector.jobs.filter(status=SyncJob.Status.COMPLETED, dry_run=False).first()
    return {
        "connector": connector,
        "last_success": last_success,
        "active_job": active,
        "active_progress": job_progress(active) if active else None,
        "last_job": last_finished,
        "imported": imported,
    }


def job_statistics(connector) -> dict:
    """The Overview's figures from the connector's recent jobs: success rates, average
    duration, the last job's counters, the last reconciliation, held deletions and open
    conflicts."""
    recent = list(
        connector.jobs.filter(status__in=SyncJob.TERMINAL_STATUSES)
        # A job cancelled before it started did not try, so it did not fail either.
        .exclude(status=SyncJob.Status.CANCELLED, started_at__isnull=True)
        .order_by("-created_at", "-id")[:RECENT_JOBS]
    )
    completed = [job for job in recent if job.status == SyncJob.Status.COMPLETED]
    # Jobs alone flatter a connector whose syncs complete with many records failing.
    processed = sum(job.totals().get("processed", 0) for job in recent)
    failed = sum(job.totals().get("failed", 0) for job in recent)
    durations = [
        job.finished_at - job.started_at for job in recent if job.started_at and job.finished_at
    ]
    last = recent[0] if recent else None
    counter_keys = [
        ("created", "Created"),
        ("updated", "Updated"),
        ("skipped", "Skipped"),
        ("conflicts", "Conflicts"),
        ("failed", "Failed"),
        ("archived", "Archived"),
        ("pushed", "Pushed"),
    ]
    if connector.sync_direction != Connector.Direction.TWO_WAY and not (
        last and last.totals().get("pushed")
    ):
        # An import-only connector pushes nothing: a column of zeros is noise to read past.
        counter_keys.pop()
    last_rows = []
    if last is not None:
        for entity_type in EntityType.values:
            counters = (last.stats or {}).get(entity_type)
            if isinstance(counters, dict):
                values = [(key, label, counters.get(key) or 0) for key, label in counter_keys]
                last_rows.append(
                    {
                        "label": EntityType(entity_type).label,
                        "values": values,
                        "any": any(value for _key, _label, value in values)
                        or bool(counters.get("push_failed")),
                        "push_failed": counters.get("push_failed") or 0,
                    }
                )
    # The last completed reconciliation: its drift is what the incremental syncs missed.
    reconciliation = (
        connector.jobs.filter(kind=SyncJob.Kind.RECONCILE, status=SyncJob.Status.COMPLETED)
        .order_by("-finished_at", "-id")
        .first()
    )
    held = list(pending_held(connector).values_list("external_ids", flat=True))
    return {
        "held_pending": sum(len(ids) for ids in held),
        "conflicts_open": unresolved_conflicts(connector).count(),
        "reconciliation": reconciliation,
        "recent_count": len(recent),
        "success_rate": round(100 * len(completed) / len(recent)) if recent else None,
        "record_success_rate": (
            floor(1000 * (processed - failed) / processed) / 10 if processed else None
        ),
        "average_duration": (sum(durations, timedelta()) / len(durations)) if durations else None,
        "stats_job": last,
        "counter_labels": [label for _, label in counter_keys],
        "counter_rows": last_rows,
        "counter_push_failed": last.totals().get("push_failed", 0) if last else 0,
        "counter_totals": (
            [(key, label, last.totals().get(key, 0)) for key, label in counter_keys] if last else []
        ),
    }


def connector_jobs(connector):
    """A connector's jobs, newest first, with who started them (the Sync History's rows)."""
    return connector.jobs.select_related("triggered_by")


def connector_activity(connector, params) -> dict:
    """The connector's activity feed page for these query parameters (see activity_feed)."""
    return activity_feed(
        params, SyncLogEntry.objects.filter(connector=connector), connector.jobs.all()
    )


def organisation_activity(connectors, params) -> dict:
    """Every connector's activity in one feed: `connectors` is the queryset the user may see."""
    return activity_feed(
        params,
        SyncLogEntry.objects.filter(connector__in=connectors.values("pk")),
        SyncJob.objects.filter(connector__in=connectors.values("pk")),
    )


def _activity_events(log, jobs, page, before):
    """Job started/finished events that fall inside the time span of this page of log rows,
    so the feed reads as one timeline. Spans of consecutive pages meet at the cursor row."""
    rows = page["rows"]
    upper = None
    if before is not None:
        upper = log.filter(id=before).values_list("processed_at", flat=True).first()
    elif page["has_newer"] and rows:
        upper = rows[0].processed_at
    lower = rows[-1].processed_at if rows and page["has_older"] else None
    events = []
    jobs = jobs.select_related("triggered_by", "connector")
    for field, kind in (("started_at", "started"), ("finished_at", "finished")):
        scoped = jobs.filter(**{f"{field}__isnull": False})
        if upper is not None:
            scoped = scoped.filter(**{f"{field}__lte": upper})
        if lower is not None:
            scoped = scoped.filter(**{f"{field}__gte": lower})
        for job in scoped.order_by(f"-{field}")[:ACTIVITY_PAGE_SIZE]:
            events.append({"at": getattr(job, field), "kind": kind, "job": job})
    return events


def _unchanged(jobs, page, filters) -> dict | None:
    """The SKIP rows the feed hides, as "and N unchanged records": summed from the job
    counters of the jobs this page shows rows of (never a COUNT over the log)."""
    job_ids = {row.job_id for row in page["rows"]}
    if not job_ids:
        job_ids = set(jobs.order_by("-id").values_list("id", flat=True)[:5])
    skipped = 0
    for stats in jobs.filter(id__in=job_ids).values_list("stats", flat=True):
        for entity_type, counters in (stats or {}).items():
            if filters.entity_type and entity_type != filters.entity_type:
                continue
            if isinstance(counters, dict):
                skipped += int(counters.get("skipped") or 0)
    if not skipped:
        return None
    return {"count": skipped, "jobs": sorted(job_ids)}


def activity_feed(params, log, jobs) -> dict:
    """An activity feed page: log rows and job events in one timeline, with the job log's
    filters. Unchanged records (SKIP) are hidden unless asked for (?skips=1, or a filter on
    them): they are most rows, and say nothing happened."""
    filters = LogFilters(params)
    show_skips = (
        params.get("skips") == "1"
        or filters.operation == SyncLogEntry.Operation.SKIP
        or filters.status == SyncLogEntry.Status.SKIPPED
    )
    rows = filters.apply(log)
    if not show_skips:
        rows = rows.exclude(operation=SyncLogEntry.Operation.SKIP)
    before = parse_id(params.get("before"))
    page = keyset_page(
        rows.select_related("connector"),
        before=before,
        after=parse_id(params.get("after")),
        size=ACTIVITY_PAGE_SIZE,
    )
    feed = [{"at": row.processed_at, "kind": "log", "entry": row} for row in page["rows"]]
    if not (filters.active or show_skips):
        # Job events are the unfiltered timeline's; a filtered feed shows only its rows.
        feed += _activity_events(log, jobs, page, before)
    feed.sort(key=lambda item: item["at"], reverse=True)
    return {
        "page": page,
        "feed": feed,
        "filters": filters,
        "show_skips": show_skips,
        "unchanged": None if show_skips else _unchanged(jobs, page, filters),
        **log_filter_choices(),
    }
