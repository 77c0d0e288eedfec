"""Recording audit events. Services call `record()` explicitly: syncs and beat run outside
any request, so request-bound signals would miss them."""

from datetime import date, datetime
from decimal import Decimal

from audit.models import AuditEvent

# Fields never written into a diff: secrets show only that they changed.
REDACTED_FIELDS = {"api_key_encrypted", "api_key"}
IGNORED_FIELDS = {
    "updated_at",
    "created_at",
    "last_sync_at",
    "next_sync_at",
    "next_reconcile_at",
    "mapping_revision",
    "cursors",
}


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def snapshot(instance, fields=None) -> dict:
    """The audited state of a model instance, JSON-ready."""
    data = {}
    for field in instance._meta.concrete_fields:
        name = field.attname
        if name in IGNORED_FIELDS or (fields and name not in fields):
            continue
        data[name] = _plain(getattr(instance, name))
    return data


def diff(before: dict, after: dict) -> dict:
    """Field-level differences: {field: {"before": x, "after": y}}; secrets redacted."""
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in REDACTED_FIELDS:
            changes["api_key"] = {"before": "••••••", "after": "•••••• (changed)"}
        else:
            changes[key] = {"before": old, "after": new}
    return changes


def record(connector, action, actor=None, changes=None) -> AuditEvent:
    actor_name = ""
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_name = actor.get_full_name() or actor.username
    else:
        actor = None
    return AuditEvent.objects.create(
        organisation_id=connector.organisation_id,
        connector=connector if connector.pk else None,
        connector_name=connector.name,
        actor=actor,
        actor_name=actor_name,
        action=action,
        changes=changes or {},
    )
