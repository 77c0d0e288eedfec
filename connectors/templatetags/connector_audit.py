"""Template filters that show audited connector values as the Settings form does:
`{% load connector_audit %}` (templates/audit/_event.html)."""

from datetime import UTC, datetime

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.html import format_html

from connectors.forms import ConnectorSettingsForm
from connectors.models import Connector
from records.models import EntityType
from web.templatetags.dashboard import as_text

register = template.Library()


def _connector_field(name):
    try:
        return Connector._meta.get_field(name)
    except FieldDoesNotExist:  # a key of a test or deletion summary
        return None


@register.filter
def audit_label(name: str) -> str:
    """An audit key as the admin knows it: the Settings form's label ("Sync frequency"),
    not the column name ("frequency") they never see."""
    form_field = ConnectorSettingsForm.base_fields.get(name)
    if form_field is not None and form_field.label:
        return str(form_field.label)
    if name == "kind":
        return "Type"
    return str(name).replace("_", " ").capitalize()


@register.filter
def audit_value(value, name: str) -> str:
    """An audited connector value as the Settings form shows it: choice labels ("Hourly",
    "Paused", "Article, Member") rather than stored codes ("1h", "PAUSED", "article")."""
    if name == "entity_types" and isinstance(value, list):
        labels = dict(EntityType.choices)
        value = [labels.get(item, item) for item in value]
    else:
        model_field = _connector_field(name)
        if model_field is not None and model_field.choices and isinstance(value, str):
            value = dict(model_field.flatchoices).get(value, value)
    if isinstance(value, str) and name.endswith("_at"):
        # A moment stored as ISO 8601 ("deleted_at"): shown as the other times of the
        # dashboard are, a <time> the browser puts in the viewer's zone (static/js/app.js).
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return as_text(value)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        utc = moment.astimezone(UTC)
        return format_html(
            '<time datetime="{}">{}</time>',
            utc.isoformat(),
            utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    return as_text(value)
