"""A read-only page of one platform record: the target of the sync log's internal-ID links."""

import nh3
from django.db import models
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from accounts.tenancy import connectors_for, get_organisation_for, org_context
from records.mapping import MAPPINGS
from records.models import RECORD_MODELS, EntityType, PlatformRecord
from records.trace import log_rows, side_by_side

BOOKKEEPING = [field.name for field in PlatformRecord._meta.local_fields]
# The body fields a password-protected post is stored without (mapping's withheld rule).
WITHHELD = {
    entity_type: {spec.name for spec in specs if spec.withheld_when_protected}
    for entity_type, specs in MAPPINGS.items()
}
WITHHELD_TEXT = "Not stored: the post is password-protected in WordPress."


def _content_fields(record):
    """(label, value, kind) for each content field; HTML fields sanitised again on the way out
    (the engine sanitises on import; a second nh3 pass costs little and fails safe)."""
    fields = []
    withheld = WITHHELD.get(record.entity_type, set()) if _protected(record) else set()
    for field in record._meta.concrete_fields:
        if field.name in BOOKKEEPING:
            continue
        value = getattr(record, field.name)
        kind = "text"
        if field.name in withheld and not value:
            value = WITHHELD_TEXT
        elif isinstance(field, models.BooleanField):
            value = "Yes" if value else "No"
        elif isinstance(field, models.TextField) and field.help_text == "Sanitised HTML":
            kind = "html"
            value = mark_safe(nh3.clean(value or ""))  # noqa: S308 - sanitised just above
        elif isinstance(field, models.FileField):
            kind = "file"
            value = value.url if value else ""
        elif isinstance(field, models.DateTimeField):
            kind = "datetime"  # shown like every other time on the dashboard
        elif isinstance(field, models.DateField):
            kind = "date"
        elif isinstance(field, models.URLField):
            kind = "url"
        elif isinstance(field, models.JSONField):
            kind = "list"
        elif field.choices:
            value = getattr(record, f"get_{field.name}_display")()
        fields.append({"label": field.verbose_name.capitalize(), "value": value, "kind": kind})
    return fields


def _protected(record) -> bool:
    return bool(getattr(record, "password_protected", False))


def _visibility(record) -> str:
    """Why a post record is not published on the platform ("" when it is, or for members)."""
    if not hasattr(record, "is_published") or record.is_published or record.archived_at:
        return ""
    if _protected(record):
        return "Password-protected in WordPress: not shown as published"
    label = record.get_status_display() if record.status else "Status unknown"
    return f"{label} in WordPress: not published"


@require_GET
def record_detail(request, org, entity_type, pk):
    organisation = get_organisation_for(request.user, org)
    model = RECORD_MODELS.get(entity_type)
    if model is None:
        raise Http404("No such entity type")
    record = get_object_or_404(model, organisation=organisation, pk=pk)
    connector = None
    if record.connector_id:
        connector = (
            connectors_for(request.user, organisation).filter(pk=record.connector_id).first()
        )
    if request.htmx and request.GET.get("part") == "values" and connector:
        # The comparison asks WordPress (up to its 10 s timeout when the site is slow or
        # down), so the page does not wait for it: the card loads itself once shown.
        values, values_error = side_by_side(connector, record)
        return render(
            request,
            "records/detail.html#values",
            {"record": record, "values": values, "values_error": values_error},
        )
    return render(
        request,
        "records/detail.html",
        {
            **org_context(request, organisation),
            "record": record,
            "entity_label": EntityType(entity_type).label,
            "connector": connector,
            "fields": _content_fields(record),
            "visibility": _visibility(record),
            "trace": log_rows(record),
        },
    )
