"""What views, the scheduler and the shell call to start or cancel a sync.

Views never talk to WordPress or Celery directly: they call these, which create the job
row, record the audit event, and enqueue the Celery task only after the transaction commits
(so a worker can never pick up a job id that is not yet visible, or one that was rolled back).
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from records.models import EntityType
from syncjobs import metrics
from syncjobs.errors import (
    InitialImportAlreadyDone,
    NothingToReconcile,
    SyncAlreadyRunning,
    SyncRefused,
)
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.tasks import run_sync_job


def first_import_done_at(connector):
    """When the connector's data was first imported: the initial import, or else the first
    sync of any kind that completed (a full or first scheduled sync imports everything too,
    so the Overview stops offering "Run Initial Import" after one and the service agrees)."""
    if connector.initial_import_done_at:
        return connector.initial_import_done_at
    first = (
        SyncJob.objects.filter(connector=connector, status=SyncJob.Status.COMPLETED)
        .filter(scope={}, dry_run=False)  # a preview or a repair job imports nothing whole
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return first


def start_sync(
    connector,
    kind: str,
    *,
    user=None,
    trigger: str = SyncJob.Trigger.MANUAL,
    scope: dict | None = None,
    dry_run: bool = False,
    due_at=None,
) -> SyncJob:
    """Create a PENDING job for the connector and enqueue it after commit.

    Raises SyncAlreadyRunning when a job is PENDING or RUNNING (the partial unique index
    decides, so concurrent clicks cannot both win), InitialImportAlreadyDone for a second
    initial import and NothingToReconcile for a reconciliation before the first import.
    Manual syncs are allowed while the connector is paused. `due_at`: when the scheduler
    found the sync due (the schedule lag metric measures from it).
    """
    if kind == SyncJob.Kind.INITIAL:
        done_at = first_import_done_at(connector)
        if done_at:
            raise InitialImportAlreadyDone(connector, done_at)
    if kind == SyncJob.Kind.RECONCILE and not first_import_done_at(connector):
        raise NothingToReconcile()
    try:
        with transaction.atomic():
            job = SyncJob.objects.create(
                connector=connector,
                kind=kind,
                trigger=trigger,
                triggered_by=user if user is not None and user.is_authenticated else None,
                scope=scope or {},
                dry_run=dry_run,
            )
            if trigger == SyncJob.Trigger.MANUAL:
                changes = {"kind": kind, "job": job.pk}
                if scope or dry_run:
                    changes |= {"what": job.description, "scope": scope or {}}
                record(connector, AuditEvent.Action.SYNC_TRIGGERED, actor=user, changes=changes)
            enqueue_job(job, due_at)
    except IntegrityError:
        running = SyncJob.objects.filter(
            connector=connector, status__in=SyncJob.ACTIVE_STATUSES
        ).first()
        raise SyncAlreadyRunning(running) from None
    return job


def enqueue_job(job: SyncJob, due_at=None) -> None:
    """Send the job's task once the current transaction commits (at once outside one).

    robust: the job row is committed by then; if the broker is down, the click still lands
    on the job page and the sweeper re-sends it (scheduler.resend_lost). The kind rides
    along for the queue router (syncjobs/routing.py), which then needs no query."""
    job_id, kind = job.pk, job.kind
    if due_at is None:
        transaction.on_commit(lambda: run_sync_job.delay(job_id, kind=kind), robust=True)
    else:
        due = due_at.isoformat()
        transaction.on_commit(
            lambda: run_sync_job.delay(job_id, due_at=due, kind=kind), robust=True
        )


# The repair tools (each a normal job: see SyncJob.scope and SyncJob.dry_run) ---------------


def _enabled(connector, entity_types) -> list[str]:
    """The types, checked: known and enabled on the connector, in the connector's order."""
    enabled = connector.enabled_entity_types()
    wanted = list(dict.fromkeys(entity_types))
    if not wanted:
        raise SyncRefused("Choose at least one entity type.")
    for entity_type in wanted:
        if entity_type not in EntityType.values:
            raise SyncRefused(
                f"Unknown entity type {entity_type!r}: one of {', '.join(EntityType.values)}."
            )
        if entity_type not in enabled:
            raise SyncRefused(
                f"{entity_type.capitalize()} is not enabled for this connector: enable it in "
                "Settings → What to Sync first."
            )
    return [t for t in enabled if t in wanted]


def resync_types(connector, entity_types, *, user=None) -> SyncJob:
    """A full sync of these entity types only; the others are untouched."""
    types = _enabled(connector, entity_types)
    return start_sync(connector, SyncJob.Kind.FULL, user=user, scope={"entity_types": types})


def sync_record(connector, entity_type: str, wordpress_id, *, user=None) -> SyncJob:
    """Fetch, decide and store one record now, by its WordPress id."""
    _enabled(connector, [entity_type])
    text = str(wordpress_id).strip()
    if not text.isdigit() or int(text) <= 0:
        raise SyncRefused(f"{text!r} is not a WordPress id: a positive whole number is.")
    scope = {"records": {entity_type: [str(int(text))]}}
    return start_sync(connector, SyncJob.Kind.FULL, user=user, scope=scope)


def retry_failed(job: SyncJob, *, user=None) -> SyncJob:
    """A new job that fetches by id only the records that failed in `job` (their create or
    update; a failed push is retried by the next sync on its own)."""
    rows = (
        SyncLogEntry.objects.filter(
            job=job,
            status=SyncLogEntry.Status.FAILED,
            operation__in=[SyncLogEntry.Operation.CREATE, SyncLogEntry.Operation.UPDATE],
        )
        .exclude(external_id="")
        .order_by("id")
        .values_list("entity_type", "external_id")
    )
    records: dict[str, list[str]] = {}
    for entity_type, external_id in rows:
        if external_id.isdigit():
            records.setdefault(entity_type, []).append(external_id)
    if not records:
        raise SyncRefused(f"Job #{job.pk} has no failed records to retry.")
    enabled = set(job.connector.enabled_entity_types())
    records = {t: ids for t, ids in records.items() if t in enabled}
    if not records:
        raise SyncRefused(
            f"The failed records of job #{job.pk} are of types no longer enabled for this "
            "connector."
        )
    scope = {"records": records, "retry_of": job.pk}
    return start_sync(job.connector, SyncJob.Kind.FULL, user=user, scope=scope)


def preview_sync(connector, *, user=None, entity_types=None) -> SyncJob:
    """A dry run: what a full sync would do, per type, with nothing written."""
    scope = {"entity_types": _enabled(connector, entity_types)} if entity_types else None
    return start_sync(connector, SyncJob.Kind.FULL, user=user, scope=scope, dry_run=True)


def request_cancel(job: SyncJob, *, user=None) -> SyncJob:
    """Ask a job to stop. A PENDING job is cancelled at once; a RUNNING one stops at the next
    page boundary (the runner checks cancel_requested_at between pages)."""
    now = timezone.now()
    with transaction.atomic():
        job = SyncJob.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            raise SyncRefused(
                f"Job #{job.pk} already finished ({job.get_status_display().lower()})."
            )
        job.cancel_requested_at = job.cancel_requested_at or now
        fields = ["cancel_requested_at"]
        if job.status == SyncJob.Status.PENDING:
            job.status = SyncJob.Status.CANCELLED
            job.finished_at = now
            job.error = "Cancelled before it started."
            fields += ["status", "finished_at", "error"]
        job.save(update_fields=fields)
        record(
            job.connector,
            AuditEvent.Action.SYNC_CANCELLED,
            actor=user,
            changes={"job": job.pk, "kind": job.kind},
        )
    if job.status == SyncJob.Status.CANCELLED:
        # It ended here, never reaching the runner's finish(), which counts the others.
        metrics.job_finished(job)
    return job
