"""ConnectionTest: one run of a connector's five-step connection test and its results."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class ConnectionTest(models.Model):
    """One run of the five-step connection test of a connector (diagnostics/checks.py).

    The row is created PENDING by the view, claimed RUNNING by the worker and finished PASSED
    or FAILED; `steps` is rewritten after every step so the page shows progress while it runs.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        PASSED = "PASSED", "Passed"
        FAILED = "FAILED", "Failed"

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)
    TERMINAL_STATUSES = (Status.PASSED, Status.FAILED)

    # Celery's soft limit for the task; the hard limit and the staleness cut-off leave room for
    # the task to write its result after the soft limit fires.
    SOFT_TIME_LIMIT = 60
    HARD_TIME_LIMIT = 75
    # A test still unfinished this long after it was requested never will be (no worker, or
    # the worker died): the page stops polling and a new test may be started.
    STALE_AFTER = timedelta(seconds=120)

    connector = models.ForeignKey(
        "connectors.Connector", models.CASCADE, related_name="connection_tests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # [{"key", "name", "status": "pass"|"fail"|"skipped", "message", "duration_ms"}], in order.
    steps = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One test in flight per connector: a double click returns the running test
            # instead of enqueueing a second one.
            models.UniqueConstraint(
                fields=["connector"],
                condition=models.Q(status__in=["PENDING", "RUNNING"]),
                name="one_active_connection_test_per_connector",
            )
        ]
        indexes = [
            # The Overview panel's query: the connector's latest test.
            models.Index(fields=["connector", "-created_at"], name="conntest_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"Connection test #{self.pk} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_stale(self) -> bool:
        return self.is_active and timezone.now() - self.created_at > self.STALE_AFTER

    @property
    def is_unfinished(self) -> bool:
        """Still worth polling for: active and not abandoned."""
        return self.is_active and not self.is_stale

    @property
    def passed(self) -> bool:
        return self.status == self.Status.PASSED

    @property
    def duration(self):
        if not self.started_at or not self.finished_at:
            return None
        return self.finished_at - self.started_at

    @property
    def failed_step(self) -> dict | None:
        return next((step for step in self.steps if step.get("status") == "fail"), None)
