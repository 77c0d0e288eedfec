"""Connector: one organisation's link to one WordPress site, with its key (encrypted), schedule and
sync options."""

from datetime import timedelta

from django.db import models
from django.urls import reverse
from django.utils import timezone

from connectors import crypto
from records.models import EntityType


class Connector(models.Model):
    class Kind(models.TextChoices):
        WORDPRESS = "wordpress", "WordPress (Association App plugin)"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        PAUSED = "PAUSED", "Paused"
        ERROR = "ERROR", "Error"

    class Frequency(models.TextChoices):
        EVERY_15_MINUTES = "15m", "Every 15 minutes"
        HOURLY = "1h", "Hourly"
        EVERY_6_HOURS = "6h", "Every 6 hours"
        DAILY = "1d", "Daily"
        WEEKLY = "1w", "Weekly"
        MANUAL = "manual", "Manual only"

    class Direction(models.TextChoices):
        IMPORT = "import", "Import only (WordPress → platform)"
        TWO_WAY = "two_way", "Two-way (platform edits are pushed back to WordPress)"

    class ConflictPolicy(models.TextChoices):
        PLATFORM_WINS = "platform_wins", "Platform wins (keep the platform's edit)"
        WORDPRESS_WINS = "wordpress_wins", "WordPress wins (overwrite the platform's edit)"

    class Reconciliation(models.TextChoices):
        DAILY = "1d", "Daily"
        WEEKLY = "1w", "Weekly"
        OFF = "off", "Off"

    organisation = models.ForeignKey(
        "accounts.Organisation", models.CASCADE, related_name="connectors"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WORDPRESS)
    site_url = models.URLField(max_length=500)
    # Fernet ciphertext; the plaintext never leaves `api_key` (see connectors/crypto.py).
    api_key_encrypted = models.TextField(blank=True)
    entity_types = models.JSONField(default=list)
    # {entity_type: {platform_field: source_path}}: overrides of the default mapping.
    field_mapping_overrides = models.JSONField(default=dict, blank=True)
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.HOURLY)
    sync_direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.IMPORT
    )
    conflict_policy = models.CharField(
        max_length=20, choices=ConflictPolicy.choices, default=ConflictPolicy.PLATFORM_WINS
    )
    mirror_images = models.BooleanField(default=False)
    # Off by default: the body of a password-protected post is kept out of the platform,
    # where whoever reads a record would not be asked for the password.
    store_protected_content = models.BooleanField(default=False)
    # The periodic reconciliation (a RECONCILE job: every record compared with WordPress,
    # differences repaired and counted as drift), dispatched by syncjobs.scheduler.
    reconcile_frequency = models.CharField(
        max_length=5, choices=Reconciliation.choices, default=Reconciliation.DAILY
    )
    next_reconcile_at = models.DateTimeField(null=True, blank=True)
    # The engine's MAPPING_REVISION at this connector's last completed full walk. A newer
    # mapping stores more of each record (e.g. the status fields of contract 1.2): records
    # unchanged in WordPress are rewritten by the next full walk, and a reconciliation that
    # does it counts no drift (syncjobs.runner).
    mapping_revision = models.PositiveIntegerField(default=0)
    # The deletion guard (syncjobs.deletion_guard): a full walk that would archive more than
    # this share of a type's live records, and at least this many, holds them for review.
    deletion_guard_percent = models.PositiveSmallIntegerField(default=10)
    deletion_guard_minimum = models.PositiveIntegerField(default=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_message = models.TextField(blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    initial_import_done_at = models.DateTimeField(null=True, blank=True)
    # Incremental sync high-water marks: {entity_type: source modified_gmt of the last record
    # seen}, plus "deletions" for the deletions feed. The source's clock, never the worker's.
    cursors = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    FREQUENCY_DELTAS = {
        Frequency.EVERY_15_MINUTES: timedelta(minutes=15),
        Frequency.HOURLY: timedelta(hours=1),
        Frequency.EVERY_6_HOURS: timedelta(hours=6),
        Frequency.DAILY: timedelta(days=1),
        Frequency.WEEKLY: timedelta(weeks=1),
    }

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="connector_name_per_org")
        ]
        indexes = [
            # The scheduler's query: ACTIVE connectors whose next_sync_at is past.
            models.Index(fields=["status", "next_sync_at"], name="connector_due_idx"),
            # The scheduler's other query: connectors whose reconciliation is due.
            models.Index(
                fields=["status", "next_reconcile_at"], name="connector_reconcile_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self):
        return reverse("connectors:detail", args=[self.organisation.slug, self.pk])

    # The API key is write-only: settable and readable in code, never rendered.
    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = crypto.encrypt(value) if value else ""

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    @property
    def is_paused(self) -> bool:
        return self.status == self.Status.PAUSED

    @property
    def frequency_delta(self) -> timedelta | None:
        return self.FREQUENCY_DELTAS.get(self.frequency)

    def compute_next_sync_at(self, after=None):
        delta = self.frequency_delta
        if delta is None:
            return None
        return (after or timezone.now()) + delta

    RECONCILE_DELTAS = {
        Reconciliation.DAILY: timedelta(days=1),
        Reconciliation.WEEKLY: timedelta(weeks=1),
    }

    def compute_next_reconcile_at(self, after=None):
        delta = self.RECONCILE_DELTAS.get(self.reconcile_frequency)
        if delta is None:
            return None
        return (after or timezone.now()) + delta

    def enabled_entity_types(self) -> list[str]:
        """Enabled types in the canonical order (the order of the sync's phases)."""
        return [t for t in EntityType.values if t in set(self.entity_types)]
