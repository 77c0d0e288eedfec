"""Why a sync request is refused: exceptions whose message is shown to the admin as is.
Raised by syncjobs.services, and reported by the runner for a job that may not run."""

from django.utils import timezone

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
