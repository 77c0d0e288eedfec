"""What the dashboard does to connectors. Views stay thin: they validate a form and call one
of these, which change the row and record the audit event in the same transaction (an action
without its audit event, or an event for a rolled-back action, cannot happen)."""

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import diff, record, snapshot
from connectors.models import Connector
from notifications.alerts import clear_auto_pause
from push.models import PushChannel
from records.mapping import MAPPING_REVISION
from records.models import EntityType
from syncjobs.models import SyncJob

# What the CREATED event lists: the configuration an admin chose (never the key).
CONFIGURATION_FIELDS = [
    "name",
    "kind",
    "site_url",
    "entity_types",
    "frequency",
    "sync_direction",
    "conflict_policy",
    "mirror_images",
    "store_protected_content",
    "reconcile_frequency",
    "deletion_guard_percent",
    "deletion_guard_minimum",
    "field_mapping_overrides",
]


class ConnectorActionRefused(Exception):
    """An action that cannot be done now; the message is shown to the admin as is."""


def _locked(connector) -> Connector:
    # Row lock: two admins pausing/resuming/saving at once apply one after the other,
    # and each audit event's "before" is the state the change really started from.
    return Connector.objects.select_for_update().select_related("organisation").get(pk=connector.pk)


def create_connector(
    organisation, *, user, name, site_url, api_key, entity_types, frequency, **options
) -> Connector:
    with transaction.atomic():
        connector = Connector(
            organisation=organisation,
            name=name,
            site_url=site_url,
            entity_types=list(entity_types),
            frequency=frequency,
            **options,
        )
        connector.api_key = api_key
        connector.next_sync_at = connector.compute_next_sync_at()
        # Its records will all be stored with the current mapping (see Connector).
        connector.mapping_revision = MAPPING_REVISION
        connector.save()
        record(
            connector,
            AuditEvent.Action.CREATED,
            actor=user,
            changes=snapshot(connector, fields=CONFIGURATION_FIELDS),
        )
    return connector


def update_connector(connector, *, user, values: dict, api_key: str = "") -> dict:
    """Apply settings from the next sync on. Returns the recorded field-level diff
    (empty when nothing changed, in which case no event is recorded)."""
    values = dict(values)
    push_enabled = values.pop("push_enabled", None)
    with transaction.atomic():
        current = _locked(connector)
        before = snapshot(current)
        for name, value in values.items():
            setattr(current, name, value)
        if api_key:
            current.api_key = api_key
        if current.frequency != before["frequency"]:
            current.next_sync_at = current.compute_next_sync_at()
        if current.reconcile_frequency != before["reconcile_frequency"]:
            current.next_reconcile_at = current.compute_next_reconcile_at()
        changes = diff(before, snapshot(current))
        if push_enabled is not None:
            channel = PushChannel.for_connector(current)
            if channel.enabled != push_enabled:
                channel.enabled = push_enabled
                channel.save(update_fields=["enabled"])
                changes["push_enabled"] = {"before": not push_enabled, "after": push_enabled}
        if not changes:
            return {}
        current.save()
        record(current, AuditEvent.Action.UPDATED, actor=user, changes=changes)
    return changes


def pause_connector(connector, *, user) -> Connector:
    with transaction.atomic():
        current = _locked(connector)
        if current.is_paused:
            raise ConnectorActionRefused(f"{current.name} is already paused.")
        previous = current.status
        current.status = Connector.Status.PAUSED
        current.next_sync_at = None
        current.save(update_fields=["status", "next_sync_at", "updated_at"])
        record(
            current,
            AuditEvent.Action.PAUSED,
            actor=user,
            changes={"status": {"before": previous, "after": current.status}},
        )
    return current


def resume_connector(connector, *, user) -> Connector:
    with transaction.atomic():
        current = _locked(connector)
        if not current.is_paused:
            raise ConnectorActionRefused(f"{current.name} is not paused.")
        current.status = Connector.Status.ACTIVE
        current.status_message = ""
        current.next_sync_at = current.compute_next_sync_at()
        current.save(update_fields=["status", "status_message", "next_sync_at", "updated_at"])
        clear_auto_pause(current)
        record(
            current,
            AuditEvent.Action.RESUMED,
            actor=user,
            changes={"status": {"before": Connector.Status.PAUSED, "after": current.status}},
        )
    return current


def delete_connector(connector, *, user) -> None:
    """Delete the connector, its jobs and logs. Platform records stay (connector FK SET_NULL);
    the DELETED audit event stays too (it keeps the connector's name)."""
    with transaction.atomic():
        current = _locked(connector)
        running = SyncJob.objects.filter(
            connector=current, status__in=SyncJob.ACTIVE_STATUSES
        ).first()
        if running is not None:
            raise ConnectorActionRefused(
                f"Job #{running.pk} is {running.get_status_display().lower()}. "
                "Cancel it and wait for it to stop before deleting the connector."
            )
        record(
            current,
            AuditEvent.Action.DELETED,
            actor=user,
            changes={
                "name": current.name,
                "site_url": current.site_url,
                "deleted_at": timezone.now().isoformat(),
            },
        )
        current.delete()


def overlaps(connector) -> list[str]:
    """Warnings, one per other connector of the organisation that syncs a type this one syncs,
    from the same site: both would import the same records, and the second one's copies fail
    (a slug is unique per organisation) or overwrite each other's."""
    mine = set(connector.entity_types or [])
    others = Connector.objects.filter(
        organisation_id=connector.organisation_id, site_url=connector.site_url
    ).exclude(pk=connector.pk)
    warnings = []
    for other in others.order_by("name"):
        shared = [
            EntityType(t).label for t in EntityType.values if t in mine and t in other.entity_types
        ]
        if shared:
            warnings.append(
                f"“{other.name}” already syncs {', '.join(shared)} from {connector.site_url}. "
                "Both connectors would import the same records, and one of them fails on each "
                "(a record's slug is unique in the organisation): turn these types off in one "
                "of the two connectors' Settings."
            )
    return warnings
