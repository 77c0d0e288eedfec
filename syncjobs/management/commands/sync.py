"""Run a sync from the shell: `python manage.py sync <connector id or name> --kind full --wait`."""

import time
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from config.celery import app
from connectors.models import Connector
from syncjobs import services
from syncjobs.models import SyncJob
from syncjobs.progress import COUNTER_KEYS
from syncjobs.runner import run_job
from syncjobs.services import SyncRefused, start_sync

KINDS = {
    "full": SyncJob.Kind.FULL,
    "initial": SyncJob.Kind.INITIAL,
    "incremental": SyncJob.Kind.INCREMENTAL,
    "reconcile": SyncJob.Kind.RECONCILE,
}


def worker_available(timeout: float = 1.0) -> bool:
    """Whether a Celery worker answers a ping (False for brokers without broadcast)."""
    try:
        return bool(app.control.ping(timeout=timeout))
    except Exception:  # filesystem broker, broker down: no worker we can count on
        return False


@contextmanager
def deliver_notifications_here():
    """No worker will send the notifications the job causes either: tasks enqueued inside
    this block (after the job's commit, as in a worker) run in this process."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


class Command(BaseCommand):
    help = "Start a sync of one connector; with --wait, run it to the end and print the summary."

    def add_arguments(self, parser):
        parser.add_argument("connector", help="connector id, or its exact name")
        parser.add_argument("--kind", choices=sorted(KINDS), default="incremental")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="wait for the job to finish (runs it in this process if no worker answers)",
        )
        parser.add_argument(
            "--in-process", action="store_true", help="with --wait: never wait for a worker"
        )
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait")
        parser.add_argument(
            "--only", metavar="TYPE[,TYPE]", help="with --kind full: only these entity types"
        )
        parser.add_argument(
            "--retry-failed", metavar="JOB_ID", type=int, help="only the records that job failed"
        )
        parser.add_argument(
            "--record", metavar="TYPE:WORDPRESS_ID", help="fetch, decide and store one record"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="with --kind full: count what the sync would do, write nothing",
        )

    def handle(self, *args, **options):
        connector = self._connector(options["connector"])
        # Asked before the job is queued: a solo-pool worker already running it answers no
        # ping until it ends, so a job longer than the ping's timeout looked workerless (this
        # process then found it claimed and printed it unfinished).
        in_process = options["wait"] and (options["in_process"] or not worker_available())
        try:
            job = self._start(connector, options)
        except SyncRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Job #{job.pk} ({job.description}) queued for {connector}.")
        if not options["wait"]:
            return
        if in_process:
            self.stdout.write("No worker answered; running the job in this process.")
            with deliver_notifications_here():
                run_job(job.pk)
        else:
            deadline = time.monotonic() + options["timeout"]
            job.refresh_from_db()
            while job.is_active:
                if time.monotonic() > deadline:
                    raise CommandError(f"Job #{job.pk} still {job.status} after the timeout.")
                time.sleep(1)
                job.refresh_from_db()
        job.refresh_from_db()
        self._summary(job)
        if job.status == SyncJob.Status.FAILED:
            raise CommandError(f"Job #{job.pk} failed: {job.error}")

    def _start(self, connector: Connector, options) -> SyncJob:
        """The job the options ask for; CommandError for options that do not go together."""
        only, retry, one = options["only"], options["retry_failed"], options["record"]
        dry_run, kind = options["dry_run"], options["kind"]
        if sum(bool(x) for x in (only or dry_run, retry, one)) > 1:
            raise CommandError("--retry-failed and --record go alone (not with --only, --dry-run).")
        if (only or dry_run) and kind != "full":
            raise CommandError("--only and --dry-run need --kind full.")
        types = [t.strip() for t in (only or "").split(",") if t.strip()]
        if dry_run:
            return services.preview_sync(connector, entity_types=types or None)
        if only:
            return services.resync_types(connector, types)
        if retry:
            job = SyncJob.objects.filter(pk=retry, connector=connector).first()
            if job is None:
                raise CommandError(f"Connector {connector} has no job #{retry}.")
            return services.retry_failed(job)
        if one:
            entity_type, _, wordpress_id = one.partition(":")
            if not wordpress_id:
                raise CommandError(
                    f"--record takes TYPE:WORDPRESS_ID (e.g. member:42), not {one!r}."
                )
            return services.sync_record(connector, entity_type.strip(), wordpress_id)
        return start_sync(connector, KINDS[kind])

    def _connector(self, ref: str) -> Connector:
        queryset = Connector.objects.select_related("organisation")
        matches = list(queryset.filter(pk=int(ref))) if ref.isdigit() else []
        if not matches:
            matches = list(queryset.filter(name=ref))
        if not matches:
            raise CommandError(f"No connector with id or name {ref!r}.")
        if len(matches) > 1:
            listing = ", ".join(f"#{c.pk} ({c.organisation.slug})" for c in matches)
            raise CommandError(f"Several connectors are named {ref!r}: {listing}. Use the id.")
        return matches[0]

    def _summary(self, job: SyncJob) -> None:
        self.stdout.write(f"Job #{job.pk}: {job.status}" + (f" — {job.error}" if job.error else ""))
        keys = COUNTER_KEYS  # the status card's columns: the engine's, less total and processed
        header = f"{'entity':<14}{'total':>8}{'processed':>10}" + "".join(f"{k:>12}" for k in keys)
        self.stdout.write(header)
        for entity_type, counters in (job.stats or {}).items():
            self.stdout.write(
                f"{entity_type:<14}{counters.get('total', 0):>8}{counters.get('processed', 0):>10}"
                + "".join(f"{counters.get(k, 0):>12}" for k in keys)
            )
        for entity_type, failures in (job.preview_failures or {}).items():
            for external_id, reason in failures:
                self.stdout.write(f"Would fail: {entity_type} {external_id}: {reason}")
        if job.dry_run:
            self.stdout.write("Preview only: no record and no sync log row was written.")
        if job.drift is not None:
            self.stdout.write(f"Drift: {job.drift} change(s) missed by incremental syncs")
        if job.duration is not None:
            self.stdout.write(f"Duration: {job.duration.total_seconds():.1f} s")
