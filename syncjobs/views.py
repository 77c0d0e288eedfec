"""The job page: live status, progress and the per-record log.

The log can hold hundreds of thousands of rows per job, so nothing here counts log rows or
uses OFFSET: pages are keyset pages on id ("WHERE job=? [AND filter=?] AND id < ? ORDER BY id
DESC LIMIT n"), each served by one of the (job, column, -id) indexes in syncjobs/models.py.
"""

import csv

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.tenancy import org_context
from connectors.models import Connector
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.progress import job_progress
from syncjobs.selectors import LogFilters, log_filter_choices
from syncjobs.services import SyncRefused, request_cancel
from web.pagination import keyset_page, parse_id

LOG_PAGE_SIZE = 50


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
    "rate",
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


def load_job(request, org, connector, job, *, only=None):
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


def _status_context(job) -> dict:
    """The status card's context. `job.connector` is the one load_job fetched with the job."""
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
    since = parse_id(request.GET.get("since")) or 0
    shown = parse_id(request.GET.get("shown")) or 0
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
    organisation, connector, job = load_job(request, org, connector, job)
    filters = LogFilters(request.GET)
    if request.htmx and request.GET.get("live"):
        return _live_log(request, organisation, connector, job, filters)
    page = keyset_page(
        filters.apply(SyncLogEntry.objects.filter(job=job)),
        before=parse_id(request.GET.get("before")),
        after=parse_id(request.GET.get("after")),
    )
    context = {
        **org_context(request, organisation),
        **_status_context(job),
        "connector": connector,
        "filters": filters,
        "page": page,
        **log_filter_choices(),
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
    organisation, connector, job = load_job(request, org, connector, job, only=STATUS_FIELDS)
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
    organisation, connector, job = load_job(request, org, connector, job)
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
    _organisation, connector, job = load_job(request, org, connector, job)
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
