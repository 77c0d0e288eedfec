"""The repair tools' buttons (POST only, CSRF-protected like every form): retry a job's failed
records, re-sync one entity type, sync one record, preview a full sync. Each starts a normal job
through syncjobs.services (which audits who started what) and opens its page; a refusal (a job
already in flight, a disabled type, a bad id) comes back as a message where the button was.
Objects come through accounts.tenancy: another organisation's connector or job is a 404."""

import re

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.tenancy import get_connector_for, get_organisation_for, org_context
from connectors import crypto
from connectors.wordpress.errors import WordPressError
from connectors.wordpress_client import client_for
from records.models import RECORD_MODELS
from records.trace import side_by_side
from syncjobs import conflicts, deletion_guard, services
from syncjobs.models import ConflictResolution, HeldDeletion, SyncLogEntry
from syncjobs.views import load_job


def _connector(request, org, connector):
    return get_connector_for(request.user, get_organisation_for(request.user, org), connector)


def _started(request, start, back: str):
    try:
        job = start()
    except services.SyncRefused as exc:
        messages.error(request, str(exc))
        return redirect(request.POST.get("next") or back) if _safe(request) else redirect(back)
    messages.success(request, f"{job.description} queued (job #{job.pk}).")
    return redirect(job.get_absolute_url())


def _safe(request) -> bool:
    """A `next` back to a page of this site only (the record page, mapping diagnostics)."""
    target = request.POST.get("next") or ""
    return target.startswith("/") and not target.startswith("//")


@require_POST
def retry_failed(request, org, connector, job):
    _organisation, _connector_obj, job = load_job(request, org, connector, job)
    return _started(
        request, lambda: services.retry_failed(job, user=request.user), job.get_absolute_url()
    )


@require_POST
def resync_type(request, org, connector):
    connector = _connector(request, org, connector)
    entity_type = request.POST.get("entity_type", "")
    return _started(
        request,
        lambda: services.resync_types(connector, [entity_type], user=request.user),
        connector.get_absolute_url(),
    )


@require_POST
def sync_record(request, org, connector):
    connector = _connector(request, org, connector)
    entity_type = request.POST.get("entity_type", "")
    wordpress_id = request.POST.get("wordpress_id", "")
    return _started(
        request,
        lambda: services.sync_record(connector, entity_type, wordpress_id, user=request.user),
        connector.get_absolute_url(),
    )


@require_POST
def preview(request, org, connector):
    connector = _connector(request, org, connector)
    return _started(
        request,
        lambda: services.preview_sync(connector, user=request.user),
        connector.get_absolute_url(),
    )


@require_http_methods(["GET", "POST"])
def held_deletions(request, org, connector):
    """The deletion guard's review page: held batches to approve (archive) or discard."""
    organisation = get_organisation_for(request.user, org)
    connector = get_connector_for(request.user, organisation, connector)
    here = reverse("connectors:held_deletions", args=[organisation.slug, connector.pk])
    if request.method == "POST":
        decision = request.POST.get("decision")
        held_id = request.POST.get("held", "")
        if decision not in ("approve", "discard") or not re.fullmatch(r"[0-9]{1,18}", held_id):
            messages.error(request, "Choose Approve or Discard for one held batch.")
            return redirect(here)
        if not HeldDeletion.objects.filter(connector=connector, pk=int(held_id)).exists():
            raise Http404("No such held deletion")  # another connector's: as for a conflict
        try:
            held = deletion_guard.decide(
                connector, int(held_id), approve=decision == "approve", user=request.user
            )
        except services.SyncRefused as exc:
            messages.error(request, str(exc))
        else:
            if held.decision == HeldDeletion.Decision.APPROVED:
                messages.success(request, f"{held.archived} {held.entity_type} records archived.")
            else:
                messages.success(request, f"{held.count} {held.entity_type} records kept.")
        return redirect(here)
    return render(
        request,
        "syncjobs/held_deletions.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "held": HeldDeletion.objects.filter(connector=connector).select_related(
                "job", "decided_by"
            )[:50],
            "tab": "overview",
        },
    )


# Conflicts shown with their diff: each diff asks WordPress for the record (one request).
CONFLICTS_SHOWN = 20
ACTIONS = {
    "keep": ConflictResolution.Action.KEEP_PLATFORM,
    "take": ConflictResolution.Action.TAKE_WORDPRESS,
    "dismiss": ConflictResolution.Action.DISMISSED,
}


@require_http_methods(["GET", "POST"])
def conflict_inbox(request, org, connector):
    """The conflict inbox: open conflicts with their field-level diff, answered one by one
    (a row's buttons send `single=<action>:<id>`) or for a ticked selection."""
    organisation = get_organisation_for(request.user, org)
    connector = get_connector_for(request.user, organisation, connector)
    here = reverse("connectors:conflicts", args=[organisation.slug, connector.pk])
    if request.method == "POST":
        return _answer(request, connector, here)
    shown = list(
        conflicts.unresolved(connector).select_related("job").order_by("-id")[:CONFLICTS_SHOWN]
    )
    return render(
        request,
        "syncjobs/conflicts.html",
        {
            **org_context(request, organisation),
            "connector": connector,
            "items": _diffs(connector, shown),
            "total": conflicts.unresolved(connector).count(),
            "two_way": connector.sync_direction == connector.Direction.TWO_WAY,
            "resolved": ConflictResolution.objects.filter(connector=connector).select_related(
                "resolved_by", "job"
            )[:20],
            "tab": "overview",
        },
    )


def _diffs(connector, rows) -> list[dict]:
    """Each conflict with its field-level diff. One client for the page, and once WordPress
    could not be asked the rest are not asked either: a site that is down costs the page one
    timeout, not one per conflict."""
    items, unreachable, client = [], "", None
    try:
        for row in rows:
            model = RECORD_MODELS.get(row.entity_type)
            rec = model.objects.filter(pk=row.internal_id).first() if model else None
            if rec is None:
                items.append(
                    {"row": row, "record": None, "diff": [], "error": "The record is gone."}
                )
                continue
            if unreachable:
                items.append({"row": row, "record": rec, "diff": [], "error": unreachable})
                continue
            try:
                client = client or client_for(connector, max_retries=0, timeout=10)
            except (WordPressError, crypto.SecretUnreadable) as exc:
                unreachable = f"WordPress could not be asked: {exc}"
                items.append({"row": row, "record": rec, "diff": [], "error": unreachable})
                continue
            diff, error = side_by_side(connector, rec, source=client)
            if error.startswith("WordPress could not be asked"):
                unreachable = error
            items.append({"row": row, "record": rec, "diff": diff, "error": error})
    finally:
        if client is not None:
            client.close()
    return items


def _answer(request, connector, here):
    if request.POST.get("single"):
        action, _sep, one = request.POST["single"].partition(":")
        ids = [one]
    else:
        action, ids = request.POST.get("action", ""), request.POST.getlist("conflict")
    # ASCII digits, at most 18 (a bigint): "²" is a digit to str.isdigit, not to int().
    if action not in ACTIONS or not ids or not all(re.fullmatch(r"[0-9]{1,18}", i) for i in ids):
        messages.error(request, "Tick at least one conflict and choose what to do with it.")
        return redirect(here)
    ids = sorted({int(i) for i in ids})
    mine = SyncLogEntry.objects.filter(
        connector=connector, status=SyncLogEntry.Status.CONFLICT, pk__in=ids
    ).count()
    if mine != len(ids):
        raise Http404("No such conflict")  # another connector's, or not a conflict at all
    try:
        done, job, refused = conflicts.resolve(connector, ids, ACTIONS[action], user=request.user)
    except services.SyncRefused as exc:
        messages.error(request, str(exc))
        return redirect(here)
    for reason in refused:
        messages.error(request, reason)
    if done:
        what = done[0].get_action_display().lower()
        text = f"{len(done)} conflict{'s' if len(done) != 1 else ''} resolved: {what}."
        messages.success(request, text + (f" Job #{job.pk} carries it out." if job else ""))
    return redirect(here)
