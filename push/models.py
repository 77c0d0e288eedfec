"""Push from WordPress: one PushChannel per connector (its secret, its subscription state, and
the counters the receiving endpoint needs to authenticate, rate-limit and debounce)."""

import secrets

from django.db import models

from connectors import crypto


class PushChannel(models.Model):
    connector = models.OneToOneField(
        "connectors.Connector", models.CASCADE, related_name="push_channel"
    )
    # On by default: where the plugin supports push, an edit reaches the platform in seconds
    # instead of at the next scheduled sync. The schedule stays as the safety net either way.
    enabled = models.BooleanField(default=True)
    # HMAC-SHA256 key shared with the plugin (sent to it by the subscription request, over
    # the connector's authenticated channel). Fernet ciphertext, as the API key is.
    secret_encrypted = models.TextField()
    # The URL the plugin was last subscribed with (blank: not subscribed) and when we tried.
    subscribed_url = models.URLField(max_length=500, blank=True)
    subscribe_attempted_at = models.DateTimeField(null=True, blank=True)
    subscribe_error = models.TextField(blank=True)
    # Replay protection: the timestamp of the newest push accepted. A push must be newer
    # (and within the replay window of the platform's clock).
    last_timestamp = models.DecimalField(max_digits=17, decimal_places=6, default=0)
    last_received_at = models.DateTimeField(null=True, blank=True)
    # Per-connector rate limit: a fixed one-minute window and how many pushes it accepted.
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_count = models.PositiveIntegerField(default=0)
    # Debounce: set when a push scheduled the incremental sync; cleared when it starts.
    # While set, further pushes are absorbed into that sync.
    sync_due_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"push channel of {self.connector}"

    @property
    def secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @classmethod
    def for_connector(cls, connector) -> "PushChannel":
        channel, _ = cls.objects.get_or_create(
            connector=connector,
            defaults={"secret_encrypted": crypto.encrypt(secrets.token_urlsafe(32))},
        )
        return channel
