"""What the notifications app stores: each organisation's choices (which event goes to which
channel, auto-pause threshold, digest), each admin's email mute, webhook endpoints, every
connector's health state (what was already notified, so one state change makes one
notification), and a Delivery row for every notification sent or failed."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from connectors import crypto


class Event(models.TextChoices):
    # The first failure after good syncs, for a connector that went into ERROR with it.
    ERROR = "error", "Connector entered ERROR"
    # The first failure of a paused connector's manual sync (it does not enter ERROR).
    FAILED = "failed", "Sync failed (paused connector)"
    RECOVERED = "recovered", "Recovered (first good sync after failures)"
    FAILED_RECORDS = "failed_records", "Completed with too many failed records"
    SLOW = "slow", "Sync much slower than usual"
    STALE = "stale", "Data is stale (no successful sync for too long)"
    AUTO_PAUSED = "auto_paused", "Connector paused automatically"
    DIGEST = "digest", "Daily digest"


# Events an organisation can route; the digest is a way of sending them, not an event.
ROUTABLE_EVENTS = [e for e in Event if e != Event.DIGEST]


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class OrganisationSettings(models.Model):
    """Per-organisation notification settings; absent means the defaults below."""

    organisation = models.OneToOneField(
        "accounts.Organisation", models.CASCADE, primary_key=True, related_name="+"
    )
    # Emails wait for one daily digest instead of going out at once (webhooks stay immediate).
    daily_digest = models.BooleanField(default=False)
    auto_pause_after_failures = models.PositiveIntegerField(
        default=10, help_text="Consecutive failed syncs before the connector is paused (0: never)"
    )
    auto_pause_after_hours = models.PositiveIntegerField(
        default=24, help_text="…and failing for at least this many hours"
    )
    # "Completed with too many failed records": at least this many, and more than this share
    # of the records the job processed (a site with a few chronically broken posts raises it).
    failed_records_min = models.PositiveIntegerField(
        default=10, help_text="Failed records in one sync before it is worth a notification"
    )
    failed_records_percent = models.PositiveSmallIntegerField(
        default=5, help_text="…and more than this percentage of the records it processed"
    )
    digest_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Notification settings of organisation {self.organisation_id}"

    @classmethod
    def for_organisation(cls, organisation_id) -> "OrganisationSettings":
        found = cls.objects.filter(organisation_id=organisation_id).first()
        return found or cls(organisation_id=organisation_id)


class Preference(models.Model):
    """Whether an event goes to a channel; no row means on (admins hear of everything)."""

    organisation = models.ForeignKey("accounts.Organisation", models.CASCADE, related_name="+")
    event = models.CharField(max_length=20, choices=Event.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "event", "channel"], name="one_preference_per_route"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} by {self.channel}: {'on' if self.enabled else 'off'}"


class EmailMute(models.Model):
    """An admin who asked to receive no notification email from one organisation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    organisation = models.ForeignKey("accounts.Organisation", models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_mute_per_org")
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} muted in organisation {self.organisation_id}"


class WebhookEndpoint(models.Model):
    organisation = models.ForeignKey(
        "accounts.Organisation", models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    # Fernet ciphertext of the signing secret (like connector keys: unreadable in a dump).
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @staticmethod
    def new_secret() -> str:
        return secrets.token_urlsafe(32)

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value)


class ConnectorHealth(models.Model):
    """What the alerting knows about a connector, updated as its jobs end.

    Each flag is a state: a notification goes out when it changes, never again while it holds
    (five failures in a row make one "failing" notification, then one "recovered")."""

    class Cause(models.TextChoices):
        WRONG_KEY = "wrong_key", "Wrong sync key"
        UNREACHABLE = "unreachable", "Site unreachable"
        PLUGIN_MISSING = "plugin_missing", "Plugin missing or disabled"
        RATE_LIMITED = "rate_limited", "Rate limited"
        MAPPING = "mapping", "Mapping or configuration error"
        SITE_ERROR = "site_error", "WordPress errors or invalid answers"
        WORKER = "worker", "Worker lost or not running"
        INTERNAL = "internal", "Internal error"

    connector = models.OneToOneField(
        "connectors.Connector", models.CASCADE, primary_key=True, related_name="health"
    )
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failure_cause = models.CharField(max_length=20, choices=Cause.choices, blank=True)
    failed_records_alerted = models.BooleanField(default=False)
    slow_alerted = models.BooleanField(default=False)
    stale_since = models.DateTimeField(null=True, blank=True)
    auto_paused_at = models.DateTimeField(null=True, blank=True)
    auto_pause_reason = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "connector health"
        indexes = [
            models.Index(fields=["failure_cause"], name="health_cause_idx"),
            models.Index(fields=["stale_since"], name="health_stale_idx"),
            models.Index(fields=["auto_paused_at"], name="health_paused_idx"),
        ]

    def __str__(self) -> str:
        return f"health of connector {self.connector_id}"


class Delivery(models.Model):
    """One notification to one recipient on one channel, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"
        # An email waiting for the organisation's daily digest.
        DIGEST = "DIGEST", "Queued for the digest"
        DIGESTED = "DIGESTED", "Sent in a digest"

    organisation = models.ForeignKey("accounts.Organisation", models.CASCADE, related_name="+")
    connector = models.ForeignKey(
        "connectors.Connector", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connector_name = models.CharField(max_length=120, blank=True)
    job = models.ForeignKey(
        "syncjobs.SyncJob", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # An email address, or the webhook's URL.
    recipient = models.CharField(max_length=500)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    webhook = models.ForeignKey(
        WebhookEndpoint, models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    subject = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    result = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="delivery_org_idx"),
            models.Index(fields=["status", "organisation"], name="delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient}: {self.status}"
