"""What a sync leaves behind: the jobs, their per-record log, held deletions and conflict
resolutions."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from records.models import EntityType

# A reconciliation's writes that are drift (see SyncJob.drift); skips, failures (the
# incrementals failed them too), conflicts and pushes are not.
DRIFT_COUNTERS = ("created", "updated", "archived")


def drift_of(stats: dict) -> int:
    """The drift of a reconciliation's counters (see SyncJob.drift)."""
    return sum(
        int(counters.get(key, 0))
        for counters in stats.values()
        if isinstance(counters, dict)
        for key in DRIFT_COUNTERS
    )


class SyncJob(models.Model):
    class Kind(models.TextChoices):
        FULL = "FULL", "Full sync"
        INITIAL = "INITIAL", "Initial import"
        INCREMENTAL = "INCREMENTAL", "Incremental sync"
        # A full walk whose every write is a change the incremental syncs missed (drift).
        RECONCILE = "RECONCILE", "Reconciliation"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULER = "scheduler", "Scheduler"
        PUSH = "push", "WordPress change"  # the plugin announced a change (push app)

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        COMPLETED = "COMPLETED", "Completed"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled"

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)
    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    connector = models.ForeignKey("connectors.Connector", models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # {entity_type: {"total": n, "processed": n, "created": n, "updated": n, "skipped": n,
    #  "conflicts": n, "failed": n, "archived": n, "pushed": n, "push_failed": n}}
    # Kept on the job so the status endpoint never counts log rows.
    stats = models.JSONField(default=dict, blank=True)
    # {entity_type: records the site served last time}: what a full walk expects of a type
    # before it reaches it (the site says a type's size only when the walk gets there), so
    # the progress estimate weighs each type by its records (syncjobs.progress.job_progress).
    # Set by the runner from the connector's previous full walk; empty when there was none.
    expected_sizes = models.JSONField(default=dict, blank=True)
    # What the run achieved against the site (set by the runner at the end, shown on the job
    # page): {"records": n, "requests": n, "seconds": s, "limit_per_minute": n or None,
    # "paced_seconds": s}. Empty for a job that never talked to a site.
    rate = models.JSONField(default=dict, blank=True)
    current_entity_type = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    # A completed reconciliation's drift: the records it had to create, update or archive,
    # each a change the incremental syncs missed (set by the runner). None for other jobs,
    # and for a reconciliation that re-stored records after a mapping change (not drift).
    drift = models.PositiveIntegerField(null=True, blank=True)
    # A partial job (the repair tools, see syncjobs.services): {"entity_types": [..]} for a
    # full sync of those types only, {"records": {type: [wordpress ids]}} for some records
    # fetched by id, with "retry_of": job id when they are another job's failed records.
    # Empty for a normal job.
    scope = models.JSONField(default=dict, blank=True)
    # A preview: the full walk decides every record and counts, but writes nothing to records,
    # cursors or the record log. Its first failures' reasons per type: {type: [[id, reason]]}.
    dry_run = models.BooleanField(default=False)
    preview_failures = models.JSONField(default=dict, blank=True)

    class LogKept(models.TextChoices):
        ALL = "all", "All rows"
        FAILURES = "failures", "Failed and conflict rows only"
        NONE = "none", "None"

    # How much of this job's per-record log retention left (syncjobs/retention.py); the job
    # row and its counters are always kept.
    log_kept = models.CharField(max_length=8, choices=LogKept.choices, default=LogKept.ALL)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The database, not the view, guarantees one job in flight per connector:
            # twenty clicks or two racing dispatchers cannot both insert.
            models.UniqueConstraint(
                fields=["connector"],
                condition=models.Q(status__in=["PENDING", "RUNNING"]),
                name="one_active_job_per_connector",
            )
        ]
        indexes = [
            # Sync History: a connector's jobs, newest first.
            models.Index(fields=["connector", "-created_at"], name="job_history_idx"),
            # The sweeper: RUNNING jobs with an old heartbeat.
            models.Index(fields=["status", "heartbeat_at"], name="job_sweep_idx"),
            # Platform page: jobs failed in the last 24 hours.
            models.Index(fields=["status", "finished_at"], name="job_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def get_absolute_url(self):
        return reverse(
            "syncjobs:detail", args=[self.connector.organisation.slug, self.connector_id, self.pk]
        )

    @property
    def held_count(self) -> int:
        """Deletions this job held for review (the deletion guard)."""
        return sum(held.count for held in self.held_deletions.all())

    @property
    def is_partial(self) -> bool:
        """A repair or preview job: it says nothing of the connector's state as a whole."""
        return bool(self.scope) or self.dry_run

    @property
    def description(self) -> str:
        """What the job does, in words (Sync History, the job page, the shell)."""
        scope = self.scope or {}
        if self.dry_run:
            return "Preview of a full sync (nothing written)"
        if scope.get("retry_of"):
            return f"Retry of job #{scope['retry_of']}'s failed records"
        if scope.get("records"):
            ids = [f"{t} {i}" for t, values in scope["records"].items() for i in values]
            return "Sync of " + ", ".join(ids[:3]) + (" …" if len(ids) > 3 else "")
        if scope.get("entity_types"):
            return f"{self.get_kind_display()} of {', '.join(scope['entity_types'])} only"
        return self.get_kind_display()

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    # Lifecycle (netbox-style start()/terminate()) ---------------------------------------

    @classmethod
    def claim(cls, job_id: int) -> "SyncJob | None":
        """PENDING -> RUNNING in one conditional UPDATE; None if someone else got it first.

        acks_late means a Celery message can be delivered twice (worker lost, broker
        redelivery): only the delivery whose UPDATE matched the PENDING row runs the job.
        """
        now = timezone.now()
        claimed = cls.objects.filter(pk=job_id, status=cls.Status.PENDING).update(
            status=cls.Status.RUNNING, started_at=now, heartbeat_at=now
        )
        if not claimed:
            return None
        return cls.objects.select_related("connector", "connector__organisation").get(pk=job_id)

    def beat(self, rate: dict | None = None) -> bool:
        """Record that the worker is alive (and the rate achieved so far, if given); False if
        the job is no longer RUNNING."""
        changes = {"heartbeat_at": timezone.now(), **({"rate": rate} if rate else {})}
        return bool(
            SyncJob.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(**changes)
        )

    def terminate(self, status: str, error: str = "") -> bool:
        """RUNNING -> a terminal status. Conditional, so it never overwrites the sweeper's
        FAILED (or a second terminate); returns whether this call ended the job."""
        if status not in self.TERMINAL_STATUSES:
            raise ValueError(f"{status} is not a terminal status")
        now = timezone.now()
        ended = SyncJob.objects.filter(pk=self.pk, status=self.Status.RUNNING).update(
            status=status, finished_at=now, heartbeat_at=now, error=error
        )
        if ended:
            self.status, self.finished_at, self.error = status, now, error
        return bool(ended)

    def effective_rate(self) -> dict | None:
        """Records/s and requests/min the run achieved, and the site's limit when pacing to
        it held the run back (more than 5 % of its time); None before the run stored it."""
        rate = self.rate or {}
        seconds = rate.get("seconds") or 0
        if seconds <= 0 or not rate.get("requests"):
            return None
        limit, paced = rate.get("limit_per_minute"), rate.get("paced_seconds") or 0
        return {
            "records_per_second": rate.get("records", 0) / seconds,
            "requests_per_minute": rate["requests"] * 60 / seconds,
            "paced_to": round(limit) if limit and paced > 0.05 * seconds else None,
            "paced_seconds": paced,
        }

    def totals(self) -> dict[str, int]:
        """Counters summed over entity types."""
        summed: dict[str, int] = {}
        for counters in (self.stats or {}).values():
            for key, value in counters.items():
                if isinstance(value, int):
                    summed[key] = summed.get(key, 0) + value
        return summed


class SyncLogEntry(models.Model):
    """One row per record per job: what happened to it and why."""

    class Operation(models.TextChoices):
        CREATE = "CREATE", "Create"
        UPDATE = "UPDATE", "Update"
        SKIP = "SKIP", "Skip"
        SYNC = "SYNC", "Sync (pushed to WordPress)"
        ARCHIVE = "ARCHIVE", "Archive (deleted in WordPress)"

    class Status(models.TextChoices):
        SUCCESS = "SUCCESS", "Success"
        FAILED = "FAILED", "Failed"
        SKIPPED = "SKIPPED", "Skipped"
        CONFLICT = "CONFLICT", "Conflict"

    id = models.BigAutoField(primary_key=True)
    # No index of their own (db_index=False): log_job_idx and log_connector_idx below start
    # with these columns and serve every lookup and cascade by them, and a sync writes one
    # log row per record, each index entry a cost of every sync.
    #
    # No database constraint either (db_constraint=False): PostgreSQL checks a foreign key
    # once per inserted row, at commit, and the log's two checks were a quarter of a cold
    # sync's page write (bench/engine_sync.py). The sync's page statement takes both values
    # from the job row itself, once per page, and writes no log row when the job is gone
    # (DjangoStore._page_statement); deleting a job or a connector goes through
    # Django's collector, which deletes the log rows (CASCADE), and a connector cannot be
    # deleted while one of its jobs is in flight (connectors.services.delete_connector).
    job = models.ForeignKey(
        SyncJob, models.CASCADE, related_name="log_entries", db_index=False, db_constraint=False
    )
    # Denormalised from the job so the connector's activity feed is one index scan.
    connector = models.ForeignKey(
        "connectors.Connector",
        models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    entity_type = models.CharField(max_length=20, choices=EntityType.choices)
    external_id = models.CharField(max_length=64)
    internal_id = models.UUIDField(null=True, blank=True)
    operation = models.CharField(max_length=10, choices=Operation.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    error = models.TextField(blank=True)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "sync log entries"
        indexes = [
            # Keyset pagination of a job's log, optionally filtered by one column: each filter
            # has an index that ends with id so "WHERE job=? AND x=? AND id < ? ORDER BY id DESC"
            # is a single range scan even with hundreds of thousands of rows.
            models.Index(fields=["job", "-id"], name="log_job_idx"),
            models.Index(fields=["job", "entity_type", "-id"], name="log_job_entity_idx"),
            models.Index(fields=["job", "status", "-id"], name="log_job_status_idx"),
            models.Index(fields=["job", "operation", "-id"], name="log_job_operation_idx"),
            models.Index(fields=["job", "external_id"], name="log_job_external_idx"),
            # Activity feed across every job of a connector.
            models.Index(fields=["connector", "-id"], name="log_connector_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.external_id}: {self.operation}/{self.status}"


class HeldDeletion(models.Model):
    """Archives a full walk held back by the deletion guard (syncjobs.deletion_guard): the
    records of one type WordPress stopped serving, too many at once to trust (a plugin
    misconfiguration, an emptied site). Kept in the database, so a restart loses nothing;
    an administrator approves (archives them) or discards, once."""

    class Decision(models.TextChoices):
        APPROVED = "APPROVED", "Approved: archived"
        DISCARDED = "DISCARDED", "Discarded: kept"

    connector = models.ForeignKey(
        "connectors.Connector", models.CASCADE, related_name="held_deletions"
    )
    job = models.ForeignKey(SyncJob, models.CASCADE, related_name="held_deletions")
    entity_type = models.CharField(max_length=20, choices=EntityType.choices)
    # WordPress ids of the records the walk would have archived.
    external_ids = models.JSONField(default=list)
    # The type's live records when the walk held them (the threshold's base).
    live_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    archived = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{len(self.external_ids)} {self.entity_type} deletions held by job #{self.job_id}"

    @property
    def count(self) -> int:
        return len(self.external_ids)


class ConflictResolution(models.Model):
    """An administrator's answer to one CONFLICT log row (syncjobs.conflicts): keep the
    platform version, take WordPress's, or dismiss. The conflict inbox is derived from the
    log (a record whose newest log row is a CONFLICT with no resolution); this row is only
    the answer, and its unique log_entry is what makes "resolved once" hold when two admins
    click at the same moment: the second INSERT fails."""

    class Action(models.TextChoices):
        KEEP_PLATFORM = "KEEP_PLATFORM", "Kept the platform version"
        TAKE_WORDPRESS = "TAKE_WORDPRESS", "Took WordPress's version"
        DISMISSED = "DISMISSED", "Dismissed"

    connector = models.ForeignKey(
        "connectors.Connector", models.CASCADE, related_name="conflict_resolutions"
    )
    # No database constraint: log retention (syncjobs.retention) deletes old log rows with
    # plain SQL, which such a constraint would refuse; the answer then outlives its row, and
    # still says which record it was about (entity_type, external_id below). Deleting a job
    # or a connector goes through Django's collector, which deletes the answers (CASCADE).
    log_entry = models.OneToOneField(
        SyncLogEntry, models.CASCADE, related_name="resolution", db_constraint=False
    )
    entity_type = models.CharField(max_length=20, choices=EntityType.choices)
    external_id = models.CharField(max_length=64)
    action = models.CharField(max_length=20, choices=Action.choices)
    # The job that carries it out (take WordPress's version; keep the platform's, two-way).
    job = models.ForeignKey(SyncJob, models.SET_NULL, null=True, blank=True, related_name="+")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(default=timezone.now)
    # The WordPress version the administrator decided about (the one the inbox's diff showed,
    # fetched when they answered): its content hash as the sync engine computes it, and its
    # modified_gmt. A sync that meets that same version again does not raise the conflict
    # again after "keep the platform version" or "dismiss" (conflict_memory.remembered_answer); a
    # later WordPress edit does. Empty when WordPress could not be asked (or no longer serves
    # the record): the conflict then comes back at the next full sync, as it was told.
    wordpress_hash = models.CharField(max_length=64, blank=True)
    wordpress_modified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-resolved_at", "-id"]
        indexes = [
            # The engine's question for a conflicting record: the newest answer about it.
            models.Index(
                fields=["connector", "entity_type", "external_id", "-id"],
                name="conflict_answer_record_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.external_id}: {self.get_action_display()}"
