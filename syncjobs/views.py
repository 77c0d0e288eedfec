"""The job page: live status, progress and the per-record log.

The log can hold hundreds of thousands of rows per job, so nothing here counts log rows or
uses OFFSET: pages are keyset pages on id ("WHERE job=? [AND filter=?] AND id < ? ORDER BY id
DESC LIMIT n"), each served by one of the (job, column, -id) indexes in syncjobs/models.py.
"""

import csv
import uuid

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.tenancy import org_context
from connectors.models import Connector
from connectors.templatetags.dashboard import percent
from records.models import RECORD_MODELS, EntityType
from syncjobs.engine.plan import COUNTER_KEYS as ENGINE_COUNTER_KEYS
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.services import SyncRefused, request_cancel

LOG_PAGE_SIZE = 50
# The per-type counters of the status card's table (templates/syncjobs/_status_card.html):
# the engine's, less the two the card shows as its progress column.
COUNTER_KEYS = tuple(k for k in ENGINE_COUNTER_KEYS if k not in ("total", "processed"))


def _parse_id(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _any(queryset, order: str) -> bool:
    """EXISTS that walks an id index from the cursor. A bare .exists() drops the ORDER BY,
    and PostgreSQL may then pick a sequential scan that reads past every older row
    (measured: 60 ms instead of 0.1 ms at 300,000 rows)."""
    return bool(list(queryset.order_by(order).values_list("id", flat=True)[:1]))


def keyset_page(queryset, *, before=None, after=None, size=LOG_PAGE_SIZE):
    """One page of `queryset` newest first, keyed on id.

    ?before=<id> pages towards older rows, ?after=<id> towards newer ones. Whether more rows
    exist beyond each edge is asked with EXISTS on the same index, never with COUNT."""
    if after is not None:
        rows = list(queryset.filter(id__gt=after).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        has_older = bool(rows) and _any(queryset.filter(id__lt=rows[-1].id), "-id")
    else:
        older = queryset.filter(id__lt=before) if before is not None else queryset
        rows = list(older.order_by("-id")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = before is not None and _any(
            queryset.filter(id__gt=rows[0].id if rows else before - 1), "id"
        )
    return {
        "rows": rows,
        "has_newer": has_newer,
        "has_older": has_older,
        "newest_id": rows[0].id if rows else None,
        "oldest_id": rows[-1].id if rows else None,
    }


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


# The columns the status card reads (templates/syncjobs/_status_card.html and the URLs it
# builds). The poll loads only these: the connector's cursors, mapping overrides and
# encrypted key, and the triggering user's password hash, are columns to transfer and
# decode ~25 times a second at 100 open pages for nothing. A template touching a deferred
# column costs one query more, which test_status_endpoint_is_cheap's query count catches.
STATUS_FIELDS = (
    "kind",
    "trigger",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
    "stats",
    "expected_sizes",
    "current_entity_type",
    "error",
    "connector",
    "triggered_by",
    "connector__organisation",
    "connector__sync_direction",
    "connector__organisation__slug",
    "triggered_by__username",
    "triggered_by__first_name",
    "triggered_by__last_name",
)


def _load(request, org, connector, job, *, only=None):
    """The job, its connector and organisation in ONE query, scoped to the current user.

    The status card is polled every 4 s by every open job page, so this runs ~25 times a
    second at 100 open pages: three lookups (organisation, connector, job) cost three ORM
    compilations and round trips. The scope is accounts.tenancy.organisations_for's, written
    as a join on the user's membership (unique per user and organisation, so it adds no
    rows) instead of an IN subquery: with `only`, the lookup measured 2.1 ms instead of
    3.2 ms in process (fewer columns to compile, transfer and decode, a simpler plan). The
    organisation must be one the user belongs to (any, for a platform admin) and the job must
    belong to that organisation's connector, otherwise 404."""
    user = request.user
    if not user.is_authenticated:
        raise Http404("No such job")
    jobs = SyncJob.objects.select_related("connector__organisation", "triggered_by")
    if only:
        jobs = jobs.only(*only)
    if not user.is_platform_admin:
        jobs = jobs.filter(connector__organisation__memberships__user=user)
    job = get_object_or_404(jobs, pk=job, connector_id=connector, connector__organisation__slug=org)
    return job.connector.organisation, job.connector, job


def job_progress(job: SyncJob) -> dict:
    """Progress figures from job.stats only (the status endpoint never counts log rows).

    The engine learns an entity type's total when it reaches that type, in this order. Until
    the last type has started (and for ever, when a job failed or was cancelled before it),
    the sum of totals is not the job's size: the types not reached are marked, and the bar
    shows an estimate by entity type instead of a false 100%."""
    rows = []
    active = job.is_active
    for entity_type in EntityType.values:
        counters = (job.stats or {}).get(entity_type)
        if not isinstance(counters, dict):
            continue
        current = entity_type == job.current_entity_type
        rows.append(
            {
                "entity_type": entity_type,
                "label": EntityType(entity_type).label,
                "plural": RECORD_MODELS[entity_type]._meta.verbose_name_plural,
                "total": counters.get("total") or 0,
                "processed": counters.get("processed") or 0,
                # Every counter the card shows, 0 when absent: a missing dict key costs the
                # template engine a failed lookup (exception + dir()) per cell per poll.
                "counters": {
                    **counters,
                    **{key: counters.get(key) or 0 for key in COUNTER_KEYS},
                },
                "current": current,
                "current_and_active": current and active,
                "waiting": False,
            }
        )
    if job.status != SyncJob.Status.COMPLETED:
        order = [row["entity_type"] for row in rows]
        current = order.index(job.current_entity_type) if job.current_entity_type in order else -1
        for index, row in enumerate(rows):
            # A type with figures has started, whatever current_entity_type says.
            row["waiting"] = index > current and not (row["total"] or row["processed"])
    waiting = sum(1 for row in rows if row["waiting"])
    totals = job.totals()
    elapsed = job.duration.total_seconds() if job.duration else 0
    processed = totals.get("processed", 0)
    return {
        "rows": rows,
        "totals": totals,
        "processed": processed,
        # For the card's links to the failed and conflicting rows (0, not a missing key).
        "failed": totals.get("failed", 0),
        "conflicts": totals.get("conflicts", 0),
        "push_failed": totals.get("push_failed", 0),
        "total": totals.get("total", 0),
        "percent": percent(processed, totals.get("total", 0)),
        "totals_known": bool(rows) and not waiting,
        "types_started": len(rows) - waiting,
        "estimate": _estimate(job, rows),
        "rate": round(processed / elapsed, 1) if elapsed > 0 and processed else None,
    }


def _estimate(job: SyncJob, rows: list[dict]) -> int:
    """Percent done while some types' sizes are still unknown. Weighed by records: a type not
    reached yet counts with the size the previous full walk found (job.expected_sizes), so
    1,000 articles done of 1,000 with 3,000 members to come is 25 %, not "1 of 2 types". Only
    when a waiting type has no such size does it fall back to a share per type."""
    expected = job.expected_sizes or {}
    if all(not row["waiting"] or isinstance(expected.get(row["entity_type"]), int) for row in rows):
        size = done = 0
        for row in rows:
            row_size = expected[row["entity_type"]] if row["waiting"] else row["total"]
            size += row_size
            done += min(row["processed"], row_size)
        if size:
            return round(100 * done / size)
    done = 0.0
    for row in rows:
        if row["waiting"]:
            continue
        if row["total"]:
            done += min(row["processed"] / row["total"], 1.0)
        elif not (row["current"] and job.is_active):
            done += 1.0  # a type with nothing to sync is done once passed
    return round(100 * done / len(rows)) if rows else 0


def _status_context(job) -> dict:
    """The status card's context. `job.connector` is the one _load fetched with the job."""
    progress = job_progress(job)
    totals = progress["totals"]
    return {
        "job": job,
        "progress": progress,
        # A Pushed column of zeros on an import-only connector is noise to read past.
        "show_push": job.connector.sync_direction == Connector.Direction.TWO_WAY
        or bool(totals.get("pushed") or totals.get("push_failed")),
    }


# The live log (templates/syncjobs/_log_live.html) adds at most this many rows per poll, and
# stops adding after LIVE_ROWS_MAX in all (the reader can load the newest page).
LIVE_ROWS_PER_POLL = LOG_PAGE_SIZE
LIVE_ROWS_MAX = 500


def _live_log(request, organisation, connector, job, filters):
    """The rows logged since the live edge's last poll (`since`), newest first: at most
    LIVE_ROWS_PER_POLL of them, the newest, with a note when more came meanwhile."""
    since = _parse_id(request.GET.get("since")) or 0
    shown = _parse_id(request.GET.get("shown")) or 0
    rows = list(
        filters.apply(SyncLogEntry.objects.filter(job=job, id__gt=since)).order_by("-id")[
            : LIVE_ROWS_PER_POLL + 1
        ]
    )
    more = len(rows) > LIVE_ROWS_PER_POLL
    rows = rows[:LIVE_ROWS_PER_POLL]
    shown += len(rows)
    return render(
        request,
        "syncjobs/_log_live.html",
        {
            "organisation": organisation,
            "connector": connector,
            "job": job,
            "since": rows[0].id if rows else since,
            "shown": shown,
            "live_rows": rows,
            "live_more": more,
            "live_full": shown >= LIVE_ROWS_MAX,
        },
    )


@require_GET
def job_detail(request, org, connector, job):
    organisation, connector, job = _load(request, org, connector, job)
    filters = LogFilters(request.GET)
    if request.htmx and request.GET.get("live"):
        return _live_log(request, organisation, connector, job, filters)
    page = keyset_page(
        filters.apply(SyncLogEntry.objects.filter(job=job)),
        before=_parse_id(request.GET.get("before")),
        after=_parse_id(request.GET.get("after")),
    )
    context = {
        **org_context(request, organisation),
        **_status_context(job),
        "connector": connector,
        "filters": filters,
        "page": page,
        "entity_types": EntityType.choices,
        "operations": SyncLogEntry.Operation.choices,
        "statuses": SyncLogEntry.Status.choices,
        "log_retention_days": settings.SYNC_LOG_RETENTION_DAYS,  # syncjobs/retention.py
        # "Retry failed records": a finished job with failed creates or updates.
        "can_retry": job.is_terminal
        and SyncLogEntry.objects.filter(
            job=job,
            status=SyncLogEntry.Status.FAILED,
            operation__in=[SyncLogEntry.Operation.CREATE, SyncLogEntry.Operation.UPDATE],
        ).exists(),
    }
    if request.htmx and request.htmx.target == "job-log":
        # Filters, pagination and the end-of-job refresh swap only the log table.
        return render(request, "syncjobs/detail.html#log-table", context)
    return render(request, "syncjobs/detail.html", context)


# Polled every 4 s by every open page and read-only: no transaction round trips
# (ATOMIC_REQUESTS wraps the other views).
@transaction.non_atomic_requests
@require_GET
def job_status(request, org, connector, job):
    """The polled status card. A handful of queries, nothing proportional to the log."""
    if not request.htmx:
        return job_detail(request, org, connector, job)
    organisation, connector, job = _load(request, org, connector, job, only=STATUS_FIELDS)
    # Its own small template, not a partial of the page: nothing of the page is rendered.
    response = render(
        request,
        "syncjobs/_status_card.html",
        {"organisation": organisation, "connector": connector, **_status_context(job)},
    )
    if job.is_terminal:
        # The card stops polling by itself (no hx-trigger in the terminal render);
        # this event refreshes the log table once, with the job's final rows.
        response["HX-Trigger"] = "job-finished"
    return response


#: What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: errors quote what WordPress sent, so a record titled
    ``=HYPERLINK(...)`` must not become a live formula in the admin's spreadsheet."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@require_GET
def job_log_csv(request, org, connector, job):
    organisation, connector, job = _load(request, org, connector, job)
    filters = LogFilters(request.GET)
    rows = (
        filters.apply(SyncLogEntry.objects.filter(job=job))
        .order_by("-id")
        .values_list(
            "id",
            "entity_type",
            "external_id",
            "internal_id",
            "operation",
            "status",
            "error",
            "processed_at",
        )
    )

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    header = [
        "log_id",
        "entity_type",
        "external_id",
        "internal_id",
        "operation",
        "status",
        "error",
        "processed_at",
    ]

    def stream():
        yield writer.writerow(header)
        # iterator(): a server-side cursor in chunks, never the whole log in memory.
        for row in rows.iterator(chunk_size=2000):
            values = list(row)
            values[3] = str(values[3]) if values[3] else ""
            values[7] = values[7].isoformat()
            yield writer.writerow([csv_cell(value) for value in values])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{organisation.slug}-connector{connector.pk}-job{job.pk}-log.csv"'
    )
    return response


@require_POST
def job_cancel(request, org, connector, job):
    _organisation, connector, job = _load(request, org, connector, job)
    try:
        job = request_cancel(job, user=request.user)
    except SyncRefused as exc:
        messages.error(request, str(exc))
    else:
        if job.status == SyncJob.Status.CANCELLED:
            messages.success(request, f"Job #{job.pk} cancelled.")
        else:
            messages.success(
                request,
                f"Cancellation requested: job #{job.pk} stops after the page it is processing.",
            )
    return redirect(job.get_absolute_url())
