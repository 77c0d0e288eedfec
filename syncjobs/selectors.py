"""Read-side queries of sync jobs and their log for the pages of other apps (a connector's
Sync History and Activity, the organisation's Activity): the log's filters, the activity feed
that interleaves log rows with job events, and the job lists."""

import uuid

from django.db.models import OuterRef, Subquery

from records.models import EntityType
from syncjobs.models import SyncJob, SyncLogEntry
from web.pagination import keyset_page, parse_id

ACTIVITY_PAGE_SIZE = 50


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
