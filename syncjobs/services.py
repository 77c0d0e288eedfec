"""What views, the scheduler and the shell call to start or cancel a sync.

Views never talk to WordPress or Celery directly: they call these, which create the job
row, record the audit event, and enqueue the Celery task only after the transaction commits
(so a worker can never pick up a job id that is not yet visible, or one that was rolled back).
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from syncjobs import metrics
from syncjobs.models import SyncJob


class SyncRefused(Exception):
    """A sync request that cannot be honoured; the message is shown to the admin as is."""


class SyncAlreadyRunning(SyncRefused):
    def __init__(self, job: SyncJob | None = None):
        self.job = job
        super().__init__(
            "A sync is already running for this connector"
            + (f" (job #{job.pk}, {job.get_status_display().lower()})." if job else ".")
            + " Wait for it to finish or cancel it."
        )


class InitialImportAlreadyDone(SyncRefused):
    def __init__(self, connector, done_at=None):
        done_at = done_at or connector.initial_import_done_at
        when = timezone.localtime(done_at).strftime("%Y-%m-%d %H:%M %Z")
        super().__init__(
            f"The initial import already completed on {when}. "
            "Use Run Full Sync to re-import everything."
        )


class NothingToReconcile(SyncRefused):
    def __init__(self):
        super().__init__(
            "Nothing to reconcile yet: run the initial import first. A reconciliation compares "
            "WordPress with records already imported, and counts every difference as missed."
        )


def first_import_done_at(connector):
    """When the connector's data was first imported: the initial import, or else the first
    sync of any kind that completed (a full or first scheduled sync imports everything too,
    so the Overview stops offering "Run Initial Import" after one and the service agrees)."""
    if connector.initial_import_done_at:
        return connector.initial_import_done_at
    first = (
        SyncJob.objects.filter(connector=connector, status=SyncJob.Status.COMPLETED)
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return first


def start_sync(
    connector, kind: str, *, user=None, trigger: str = SyncJob.Trigger.MANUAL, due_at=None
) -> SyncJob:
    """Create a PENDING job for the connector and enqueue it after commit.

    Raises SyncAlreadyRunning when a job is PENDING or RUNNING (the partial unique index
    decides, so concurrent clicks cannot both win), InitialImportAlreadyDone for a second
    initial import and NothingToReconcile for a reconciliation before the first import.
    Manual syncs are allowed while the connector is paused. `due_at`: when the scheduler
    found the sync due (the schedule lag metric measures from it).
    """
    from syncjobs.tasks import run_sync_job

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
            )
            if trigger == SyncJob.Trigger.MANUAL:
                record(
                    connector,
                    AuditEvent.Action.SYNC_TRIGGERED,
                    actor=user,
                    changes={"kind": kind, "job": job.pk},
                )
            # robust: the job row is committed by now; if the broker is down, the click
            # still lands on the job page and the sweeper re-sends it (scheduler.resend_lost).
            if due_at is None:
                transaction.on_commit(lambda: run_sync_job.delay(job.pk), robust=True)
            else:
                due = due_at.isoformat()
                transaction.on_commit(lambda: run_sync_job.delay(job.pk, due_at=due), robust=True)
    except IntegrityError:
        running = SyncJob.objects.filter(
            connector=connector, status__in=SyncJob.ACTIVE_STATUSES
        ).first()
        raise SyncAlreadyRunning(running) from None
    return job


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
