"""Connector pages: list, create, the detail tabs (Overview, Sync History, Activity, Audit Log,
Settings) and the POST-only actions. Every object comes through accounts.tenancy; the work is
done by connectors.services and syncjobs.services."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.tenancy import connectors_for, get_connector_for, get_organisation_for, org_context
from audit.models import AuditEvent
from connectors import services
from connectors.forms import ConnectorCreateForm, ConnectorSettingsForm
from connectors.models import Connector
from connectors.templatetags.connector_audit import audit_label
from notifications.alerts import last_success_subquery
from records.models import RECORD_MODELS, PublishStatus
from syncjobs import selectors
from syncjobs.charts import recent_job_charts
from syncjobs.models import SyncJob
from syncjobs.services import SyncRefused, start_sync

HISTORY_PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 25


def _load(request, org, connector):
    organisation = get_organisation_for(request.user, org)
    return organisation, get_connector_for(request.user, organisation, connector)


def _page(request, queryset, size):
    return Paginator(queryset, size).get_page(request.GET.get("page"))


@require_GET
def connector_list(request, org):
    organisation = get_organisation_for(request.user, org)
    connectors = (
        selectors.with_latest_jobs(connectors_for(request.user, organisation))
        .annotate(last_success_at=last_success_subquery())
        # "acme events" next to "Acme main site", not after every capitalised name.
        .order_by(Lower("name"), "pk")
    )
    return render(
        request,
        "connectors/list.html",
        {**org_context(request, organisation), "connectors": connectors},
    )


@require_http_methods(["GET", "POST"])
def connector_create(request, org):
    organisation = get_organisation_for(request.user, org)
    form = ConnectorCreateForm(request.POST or None, organisation=organisation)
    if request.method == "POST" and form.is_valid():
        connector = services.create_connector(
            organisation,
            user=request.user,
            name=form.cleaned_data["name"],
            site_url=form.cleaned_data["site_url"],
            api_key=form.cleaned_data["api_key"],
            entity_types=form.cleaned_data["entity_types"],
            frequency=form.cleaned_data["frequency"],
        )
        messages.success(
            request,
            f"Connector “{connector.name}” created. Test the connection, then run the "
            "initial import to bring in your WordPress content.",
        )
        for warning in services.overlaps(connector):
            messages.warning(request, warning)
        return redirect(connector.get_absolute_url())
    return render(
        request,
        "connectors/create.html",
        {**org_context(request, organisation), "form": form},
    )


def _statistics(connector) -> dict:
    counts = []
    enabled = set(connector.entity_types)
    for entity_type, model in RECORD_MODELS.items():
        live = model.objects.filter(connector=connector, archived_at__isnull=True)
        if hasattr(model, "password_protected"):
            # Drafts, scheduled, private and protected posts are stored but not published:
            # counted apart, in the same query.
            numbers = live.aggregate(
                count=Count("pk"),
                published=Count(
                    "pk", filter=Q(status=PublishStatus.PUBLISH, password_protected=False)
                ),
            )
            count, published = numbers["count"], numbers["published"]
        else:
            count, published = live.count(), None
        if count or entity_type in enabled:
            # The model's own names ("1 Company", "16 Companies"), never label + "s".
            name = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
            counts.append(
                {
                    "label": capfirst(name),
                    "count": count,
                    "type": entity_type,
                    "enabled": entity_type in enabled,  # offers "Re-sync this type"
                    "unpublished": count - published if published is not None else 0,
                }
            )
    return {
        "record_counts": counts,
        "records_total": sum(item["count"] for item in counts),
        **selectors.job_statistics(connector),
    }


@require_GET
def connector_detail(request, org, connector):
    organisation, connector = _load(request, org, connector)
    if request.htmx and request.htmx.target in ("statistics", "counters"):
        # Each refreshed once when the running job ends (HX-Trigger: job-finished).
        return render(
            request,
            f"connectors/overview.html#{request.htmx.target}",
            {"organisation": organisation, "connector": connector, **_statistics(connector)},
        )
    return render(
        request,
        "connectors/overview.html",
        {
            **org_context(request, organisation),
            **selectors.connector_status(connector),
            **_statistics(connector),
            "job_charts": recent_job_charts(connector),
            "tab": "overview",
        },
    )


# Polled every 4 s by every open page and read-only: no transaction round trips
# (ATOMIC_REQUESTS wraps the other views).
@transaction.non_atomic_requests
@require_GET
def connector_status(request, org, connector):
    """The Overview's polled status card: a few queries, never the statistics."""
    if not request.htmx:
        return connector_detail(request, org, connector)
    organisation, connector = _load(request, org, connector)
    context = {"organisation": organisation, **selectors.connector_status(connector)}
    response = render(request, "connectors/overview.html#status-card", context)
    if context["active_job"] is None:
        response["HX-Trigger"] = "job-finished"
    return response


# The Sync History's counters: each job's per-entity-type counters summed (job.totals()).
HISTORY_COUNTERS = (
    ("processed", "Processed"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("skipped", "Skipped"),
    ("conflicts", "Conflicts"),
    ("archived", "Archived"),
    ("failed", "Failed"),
)


def _history_rows(jobs, connector) -> tuple[list[dict], bool]:
    """One row per job of the page with its summed counters, and whether the page shows a
    Pushed column: on a two-way connector, or when a job of the page pushed anything (the
    connector may have been switched back to import-only since)."""
    rows = []
    for job in jobs:
        totals = job.totals()
        rows.append(
            {
                "job": job,
                "counters": [(key, label, totals.get(key, 0)) for key, label in HISTORY_COUNTERS],
                "pushed": totals.get("pushed", 0),
                "push_failed": totals.get("push_failed", 0),
                "drift": job.drift,
                "any": any(totals.get(key) for key in ("processed", "pushed", "push_failed")),
            }
        )
    show_push = connector.sync_direction == Connector.Direction.TWO_WAY or any(
        row["pushed"] or row["push_failed"] for row in rows
    )
    return rows, show_push


@require_GET
def connector_history(request, org, connector):
    organisation, connector = _load(request, org, connector)
    jobs = _page(request, selectors.connector_jobs(connector), HISTORY_PAGE_SIZE)
    rows, show_push = _history_rows(jobs, connector)
    return render(
        request,
        "connectors/history.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "jobs": jobs,
            "rows": rows,
            "show_push": show_push,
            "counter_labels": [label for _key, label in HISTORY_COUNTERS],
            "job_charts": recent_job_charts(connector),
            "tab": "history",
        },
    )


@require_GET
def connector_activity(request, org, connector):
    organisation, connector = _load(request, org, connector)
    return render(
        request,
        "connectors/activity.html",
        {
            **org_context(request, organisation),
            **selectors.connector_activity(connector, request.GET),
            "connector": connector,
            "tab": "activity",
        },
    )


@require_GET
def organisation_activity(request, org):
    """Every connector's activity in one feed, for an organisation with several."""
    organisation = get_organisation_for(request.user, org)
    connectors = connectors_for(request.user, organisation)
    return render(
        request,
        "connectors/organisation_activity.html",
        {
            **org_context(request, organisation),
            **selectors.organisation_activity(connectors, request.GET),
            "show_connector": True,
        },
    )


@require_GET
def connector_audit(request, org, connector):
    organisation, connector = _load(request, org, connector)
    events = _page(
        request,
        AuditEvent.objects.filter(connector=connector).select_related("actor"),
        AUDIT_PAGE_SIZE,
    )
    return render(
        request,
        "connectors/audit.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "events": events,
            "tab": "audit",
        },
    )


@require_GET
def organisation_audit(request, org):
    """Every audit event of the organisation, connectors deleted since included: their
    DELETED event (and their history) has no connector page left to show it."""
    organisation = get_organisation_for(request.user, org)
    events = _page(
        request,
        # The connector's current name; a deleted one keeps the name stored with its events.
        AuditEvent.objects.filter(organisation=organisation).select_related("actor", "connector"),
        AUDIT_PAGE_SIZE,
    )
    return render(
        request,
        "connectors/organisation_audit.html",
        {**org_context(request, organisation), "events": events, "show_connector": True},
    )


@require_http_methods(["GET", "POST"])
def connector_settings(request, org, connector):
    organisation, connector = _load(request, org, connector)
    # The form validates a copy, so an invalid POST never shows unsaved values in the header.
    form = ConnectorSettingsForm(
        request.POST or None,
        instance=Connector.objects.select_related("organisation").get(pk=connector.pk),
    )
    if request.method == "POST" and form.is_valid():
        changes = services.update_connector(
            connector,
            user=request.user,
            values=form.changed_values(),
            api_key=form.cleaned_data["api_key"],
        )
        if changes:
            messages.success(
                request,
                "Settings saved: "
                + ", ".join(audit_label(name) for name in sorted(changes))
                + ". They apply from the next sync.",
            )
        else:
            messages.info(request, "Nothing changed.")
        return redirect("connectors:settings", org=organisation.slug, connector=connector.pk)
    return render(
        request,
        "connectors/settings.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "form": form,
            "overlaps": services.overlaps(connector),
            "tab": "settings",
        },
    )


@require_POST
def connector_sync(request, org, connector):
    _organisation, connector = _load(request, org, connector)
    kind = request.POST.get("kind")
    if kind not in (SyncJob.Kind.FULL, SyncJob.Kind.INITIAL):
        messages.error(request, "Choose Run Full Sync or Run Initial Import.")
        return redirect(connector.get_absolute_url())
    try:
        job = start_sync(connector, kind, user=request.user)
    except SyncRefused as exc:
        messages.error(request, str(exc))
        return redirect(connector.get_absolute_url())
    messages.success(request, f"{job.get_kind_display()} queued (job #{job.pk}).")
    return redirect(job.get_absolute_url())


@require_POST
def connector_pause(request, org, connector):
    _organisation, connector = _load(request, org, connector)
    try:
        services.pause_connector(connector, user=request.user)
    except services.ConnectorActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            "Sync paused: no scheduled syncs run until you resume. Manual syncs still work.",
        )
    return redirect(connector.get_absolute_url())


@require_POST
def connector_resume(request, org, connector):
    _organisation, connector = _load(request, org, connector)
    try:
        connector = services.resume_connector(connector, user=request.user)
    except services.ConnectorActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Sync resumed.")
    return redirect(connector.get_absolute_url())


@require_http_methods(["GET", "POST"])
def connector_delete(request, org, connector):
    """GET is the confirmation step; POST deletes."""
    organisation, connector = _load(request, org, connector)
    confirm_error = ""
    typed = ""
    if request.method == "POST":
        typed = request.POST.get("confirm_name", "").strip()
        if typed != connector.name:
            # Beside the field, with what was typed kept: a flash message above the
            # breadcrumb and an emptied box hid which letter was wrong.
            confirm_error = (
                f"This does not match the connector's name: type “{connector.name}” exactly "
                "(capitals and spaces count)."
            )
        else:
            try:
                services.delete_connector(connector, user=request.user)
            except services.ConnectorActionRefused as exc:
                messages.error(request, str(exc))
                return redirect(connector.get_absolute_url())
            messages.success(
                request,
                f"Connector “{connector.name}” deleted. "
                "The records it imported stay on the platform.",
            )
            return redirect(reverse("connectors:list", args=[organisation.slug]))
    return render(
        request,
        "connectors/delete.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "records_total": sum(
                model.objects.filter(connector=connector).count()
                for model in RECORD_MODELS.values()
            ),
            "jobs_total": connector.jobs.count(),
            "confirm_error": confirm_error,
            "typed": typed,
            "now": timezone.now(),
        },
        status=400 if confirm_error else 200,
    )
