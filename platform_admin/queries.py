"""The platform admin's reads across every organisation.

Every function returns a fixed number of queries whatever the number of connectors:
the page must stay fast with 10,000 connectors in 1,000 organisations (see
bench/platform_connectors.py for the figures).
"""

from datetime import timedelta

from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from connectors.models import Connector
from notifications.models import ConnectorHealth
from syncjobs.models import SyncJob

FAILED_JOBS_WINDOW = timedelta(hours=24)

# Whitelisted sort keys -> ORDER BY. The request never names a column itself.
# Every ordering ends with the primary key so pages do not overlap or skip rows
# when the sort key has ties (many connectors share a status or a next sync time).
# Names sort case-insensitively ("acme" next to "Acme"), whatever the database collation.
SORT_FIELDS = {
    "organisation": (Lower("organisation__name"), Lower("name")),
    "name": (Lower("name"), Lower("organisation__name")),
    "status": (F("status"), Lower("organisation__name"), Lower("name")),
    "last_sync": (F("last_job_at"),),
    "next_sync": (F("next_sync_at"),),
}
SORT_LABELS = {
    "organisation": "Organisation",
    "name": "Name",
    "status": "Status",
    "last_sync": "Last attempt",
    "next_sync": "Next sync",
}
DEFAULT_SORT = "organisation"


def sort_choices() -> list[tuple[str, str]]:
    choices = []
    for key, label in SORT_LABELS.items():
        choices.append((key, f"{label} (ascending)"))
        choices.append((f"-{key}", f"{label} (descending)"))
    return choices


def summary(now=None) -> dict[str, int]:
    """The summary cards: two queries in all.

    One aggregate over connectors (COUNT ... FILTER (WHERE ...) for each status, so a single
    scan instead of one query per card) and one count of recent failures, which the
    (status, finished_at) index job_finished_idx answers as a range scan.
    """
    now = now or timezone.now()
    counts = Connector.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(status=Connector.Status.ACTIVE)),
        error=Count("pk", filter=Q(status=Connector.Status.ERROR)),
        paused=Count("pk", filter=Q(status=Connector.Status.PAUSED)),
        organisations=Count("organisation", distinct=True),
    )
    counts["failed_jobs_24h"] = SyncJob.objects.filter(
        status=SyncJob.Status.FAILED, finished_at__gte=now - FAILED_JOBS_WINDOW
    ).count()
    return counts


def _latest_job():
    # Served by job_history_idx (connector, -created_at): one index probe per connector row.
    return SyncJob.objects.filter(connector=OuterRef("pk")).order_by("-created_at")


def _last_job_at():
    # When the latest job ended, or started, or was queued: the time of its result.
    latest = _latest_job().annotate(at=Coalesce("finished_at", "started_at", "created_at"))
    return Subquery(latest.values("at")[:1])


def _last_success_at():
    # The latest completed job that wrote something (a preview did not), newest first on
    # job_history_idx: a connector failing for a week walks its failed jobs, never its whole
    # history, and a healthy one stops at its latest job.
    completed = _latest_job().filter(status=SyncJob.Status.COMPLETED, dry_run=False)
    return Subquery(completed.values("finished_at")[:1])


def _ordering(sort: str) -> list:
    descending = sort.startswith("-")
    fields = SORT_FIELDS.get(sort.removeprefix("-"), SORT_FIELDS[DEFAULT_SORT])
    # Never-synced and manual-only connectors (NULL times) go last in both directions.
    return [
        expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
        for expression in (*fields, F("pk"))
    ]


# Platform health: what `?health=` accepts, each a filter on the connector's alert state
# (notifications.models.ConnectorHealth): failing now (any cause or one cause), stale,
# paused automatically.
HEALTH_FILTERS = {
    "failing": Q(health__failing_since__isnull=False),
    **{
        cause: Q(health__failing_since__isnull=False, health__failure_cause=cause)
        for cause in ConnectorHealth.Cause.values
    },
    "stale": Q(health__stale_since__isnull=False) & ~Q(status=Connector.Status.PAUSED),
    "auto_paused": Q(health__auto_paused_at__isnull=False, status=Connector.Status.PAUSED),
}


def health_summary() -> dict:
    """The health cards: connectors failing now grouped by cause, stale, auto-paused. Two
    queries whatever the fleet's size (a GROUP BY and one aggregate)."""
    failing = (
        Connector.objects.filter(HEALTH_FILTERS["failing"])
        .values("health__failure_cause")
        .annotate(count=Count("pk"))
        .order_by("-count", "health__failure_cause")
    )
    labels = dict(ConnectorHealth.Cause.choices)
    causes = [
        {
            "cause": row["health__failure_cause"] or "failing",
            "label": labels.get(row["health__failure_cause"], "Unknown cause"),
            "count": row["count"],
        }
        for row in failing
    ]
    counts = Connector.objects.aggregate(
        stale=Count("pk", filter=HEALTH_FILTERS["stale"]),
        auto_paused=Count("pk", filter=HEALTH_FILTERS["auto_paused"]),
    )
    return {"failing": sum(c["count"] for c in causes), "causes": causes, **counts}


def connector_ids(connectors, *, sort=DEFAULT_SORT):
    """The ids of `connectors` (every organisation's, filtered: platform_admin.filters),
    sorted: what the paginator counts and slices.

    Only ids and sort keys: sorting 10,000 narrow rows stays in memory, and the latest-job
    subqueries are not computed for the rows an OFFSET skips (unless the sort needs them).
    """
    ids = connectors
    if sort.removeprefix("-") == "last_sync":
        ids = ids.annotate(last_job_at=_last_job_at())
    return ids.order_by(*_ordering(sort)).values_list("pk", flat=True)


def connector_rows(ids, *, sort=DEFAULT_SORT):
    """One page of connectors with their organisation and latest job, in one query.

    `ids` is a slice of connector_ids() and stays a subquery (WHERE id IN (... LIMIT 50
    OFFSET n)): the latest job's status and time are correlated subqueries computed for
    those rows only, never a query per row.
    """
    return (
        Connector.objects.filter(pk__in=ids)
        .select_related("organisation")
        .only(
            "name",
            "kind",
            "status",
            "status_message",
            "next_sync_at",
            "frequency",
            "organisation__name",
            "organisation__slug",
        )
        .annotate(
            last_job_status=Subquery(_latest_job().values("status")[:1]),
            # For "Completed with N failures" and "Cancelled before it started".
            last_job_stats=Subquery(_latest_job().values("stats")[:1]),
            last_job_started_at=Subquery(_latest_job().values("started_at")[:1]),
            last_job_at=_last_job_at(),
            # Shown when the last attempt was not a success: how old the data really is.
            last_success_at=_last_success_at(),
        )
        .order_by(*_ordering(sort))
    )
