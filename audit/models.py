"""AuditEvent: one append-only row per change to a connector, with its field-level diff."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Who changed what on a connector. Append-only: rows are never updated or deleted."""

    class Action(models.TextChoices):
        CREATED = "CREATED", "Created"
        UPDATED = "UPDATED", "Updated"
        DELETED = "DELETED", "Deleted"
        PAUSED = "PAUSED", "Paused"
        RESUMED = "RESUMED", "Resumed"
        SYNC_TRIGGERED = "SYNC_TRIGGERED", "Sync triggered"
        SYNC_CANCELLED = "SYNC_CANCELLED", "Sync cancelled"
        CONNECTION_TESTED = "CONNECTION_TESTED", "Connection tested"

    organisation = models.ForeignKey("accounts.Organisation", models.CASCADE, related_name="+")
    # SET_NULL so the DELETED event outlives its connector; the name is kept beside it.
    connector = models.ForeignKey(
        "connectors.Connector", models.SET_NULL, null=True, blank=True, related_name="audit_events"
    )
    connector_name = models.CharField(max_length=120)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    # {field: {"before": x, "after": y}} for UPDATED; free details for the others.
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The connector's Audit Log panel, newest first.
            models.Index(fields=["connector", "-at"], name="audit_connector_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.connector_name} by {self.actor_name or 'system'}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only")
