"""A sync job's lifecycle: claim -> run -> finish, with a heartbeat and cancellation.

Called by the Celery task (syncjobs.tasks.run_sync_job), by `manage.py sync --wait` when no
worker runs, and by tests. The engine itself (syncjobs.engine.core) knows nothing of jobs,
Celery or HTTP; this module builds its plan from the connector, gives it the WordPress client
as source and a DjangoStore, and turns the outcome into the job's terminal status.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from config.logs import log_context
from connectors import crypto
from connectors.models import Connector
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import WordPressError
from connectors.wordpress.media import MIRRORED_FILES
from connectors.wordpress_client import client_for
from notifications import alerts
from notifications.causes import cause_of
from push.subscriptions import ensure_subscribed
from records.mapping import MAPPING_REVISION, mapping_for
from records.models import RECORD_MODELS
from syncjobs import metrics
from syncjobs.conflict_memory import remembered_answer
from syncjobs.engine.core import JobCancelled, Plan, SyncEngine, fresh_counters
from syncjobs.engine.preview import PreviewStore
from syncjobs.engine.store import DjangoStore
from syncjobs.errors import InitialImportAlreadyDone
from syncjobs.models import SyncJob, drift_of

logger = logging.getLogger(__name__)

CANCELLED_MESSAGE = (
    "Cancelled at an administrator's request; records processed before that were kept."
)


def heartbeat_interval() -> float:
    # Several beats fit in the stale window, so one slow beat never gets a live job swept.
    return max(1.0, min(30.0, settings.SYNC_STALE_AFTER_SECONDS / 6))


class Heartbeat(threading.Thread):
    """Beats while the job runs, even during a long page (retries with Retry-After waits).
    Each beat also stores the rate achieved so far (`rate`, set once the run has a client),
    so a running job's page shows its requests/min too, not only at the end."""

    def __init__(self, job: SyncJob, interval: float | None = None):
        super().__init__(name=f"sync-heartbeat-{job.pk}", daemon=True)
        self.job = job
        self.interval = interval or heartbeat_interval()
        self.rate: Callable[[], dict] | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    if not self.job.beat(rate=self._rate_so_far()):
                        return
                except DatabaseError:
                    logger.warning("heartbeat of job %s failed", self.job.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections only

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)

    def _rate_so_far(self) -> dict | None:
        try:
            return self.rate() if self.rate else None
        except RuntimeError:  # the run added a type's counters while they were summed
            return None


def build_plan(job: SyncJob, connector: Connector) -> Plan:
    """The engine's plan. Raises ValueError for invalid field mapping overrides."""
    overrides = connector.field_mapping_overrides or {}
    entity_types = connector.enabled_entity_types()
    scope = job.scope or {}
    if scope.get("records") or scope.get("entity_types"):
        # A repair job: only its types (checked enabled when it was started, and again here:
        # a type disabled meanwhile is not synced).
        wanted = set(scope.get("records") or scope["entity_types"])
        entity_types = [t for t in entity_types if t in wanted]
    specs = {
        t: mapping_for(t, overrides.get(t), protected_content=connector.store_protected_content)
        for t in entity_types
    }
    mirror = connector.mirror_images
    return Plan(
        kind=job.kind,
        entity_types=entity_types,
        specs=specs,
        cursors=dict(connector.cursors or {}),
        two_way=connector.sync_direction == Connector.Direction.TWO_WAY,
        conflict_policy=connector.conflict_policy,
        mirror=lambda entity_type: mirror and entity_type in MIRRORED_FILES,
        slugged=frozenset(t for t in entity_types if RECORD_MODELS[t].has_slug),
        # Records per request; the contract's maximum unless a test or a slow host needs less.
        per_page=int(getattr(settings, "SYNC_PAGE_SIZE", 100)),
        prefetch=settings.SYNC_PREFETCH,
        count_drift=connector.mapping_revision == MAPPING_REVISION,
        dry_run=job.dry_run,
        deletion_guard=(connector.deletion_guard_percent, connector.deletion_guard_minimum),
        conflict_answer=remembered_answer(connector),
    )


def execute(job: SyncJob, *, source=None, heartbeat: Heartbeat | None = None) -> tuple[str, str]:
    """Run a claimed job's phases; returns (terminal status, error message)."""
    connector = job.connector
    if job.kind == SyncJob.Kind.INITIAL and connector.initial_import_done_at:
        return SyncJob.Status.FAILED, str(InitialImportAlreadyDone(connector))
    try:
        plan = build_plan(job, connector)
    except ValueError as exc:
        return SyncJob.Status.FAILED, f"The connector's field mapping is invalid: {exc}"
    if not plan.entity_types:
        wanted = (job.scope or {}).get("records") or (job.scope or {}).get("entity_types")
        if wanted and connector.enabled_entity_types():
            # A repair job whose types were disabled after it was queued: say which.
            verb = "is" if len(wanted) == 1 else "are"
            return SyncJob.Status.FAILED, (
                f"{', '.join(wanted).capitalize()} {verb} no longer enabled for this connector: "
                "nothing was synced. Enable it in Settings → What to Sync first."
            )
        return SyncJob.Status.FAILED, (
            "No entity type is enabled for this connector: enable at least one in its settings."
        )
    # Every phase shows (at zero) from the start. JSON objects keep no key order in
    # PostgreSQL: display in connector.enabled_entity_types() order.
    job.expected_sizes = expected_sizes(job, plan.entity_types)
    SyncJob.objects.filter(pk=job.pk).update(
        stats={t: fresh_counters() for t in plan.entity_types}, expected_sizes=job.expected_sizes
    )
    try:
        client = source or client_for(connector)
    except (WordPressError, crypto.SecretUnreadable) as exc:
        job.error_cause = cause_of(exc)  # for the notifications (Platform health groups by it)
        return SyncJob.Status.FAILED, str(exc)
    if isinstance(client, WordPressClient):  # not a test's wrapped source
        ensure_subscribed(connector, client)  # once per connector (push from WordPress)
    store = PreviewStore(job, connector) if job.dry_run else DjangoStore(job, connector)
    records = (job.scope or {}).get("records")
    engine = None
    run_started, requests_before = time.monotonic(), getattr(client, "request_count", 0)

    def rate_so_far() -> dict:
        return _rate(client, engine.stats, time.monotonic() - run_started, requests_before)

    switch_interval = sys.getswitchinterval()
    try:
        sys.setswitchinterval(settings.SYNC_SWITCH_INTERVAL_MS / 1000)  # see the setting
        engine = SyncEngine(client, store, plan)
        if heartbeat is not None and isinstance(client, WordPressClient):
            heartbeat.rate = rate_so_far
        if records:
            stats = engine.run_records({t: records[t] for t in plan.entity_types})
        else:
            stats = engine.run()
        if job.dry_run:
            store.publish(None, stats)
        if records and engine.not_found and not job.scope.get("retry_of"):
            entity_type, external_id = engine.not_found[0]
            return SyncJob.Status.FAILED, (
                f"WordPress has no {entity_type} with id {external_id} (or does not publish it "
                "to the sync API), and the platform has no such record: check the id."
            )
        if not job.is_partial:
            _walked(job, plan, stats)
        if engine.held:
            # COMPLETED, and says so where the job's outcome is read (its page, the history,
            # the shell): the deletions wait for an administrator (syncjobs.deletion_guard).
            held = sum(engine.held.values())
            return (
                SyncJob.Status.COMPLETED,
                f"{held} deletion{'s' if held != 1 else ''} held for review",
            )
    except JobCancelled:
        return SyncJob.Status.CANCELLED, CANCELLED_MESSAGE
    except (WordPressError, crypto.SecretUnreadable) as exc:
        job.error_cause = cause_of(exc)
        return SyncJob.Status.FAILED, str(exc)
    except Exception as exc:
        logger.exception("sync job %s crashed", job.pk)
        return SyncJob.Status.FAILED, internal_error(exc)
    finally:
        sys.setswitchinterval(switch_interval)
        if heartbeat is not None:
            heartbeat.rate = None  # the run's own figure below is the last word
        if isinstance(client, WordPressClient) and engine is not None:
            job.rate = rate_so_far()
            SyncJob.objects.filter(pk=job.pk).update(rate=job.rate)
        store.close()
        if source is None:
            client.close()  # a client we opened; a caller's source is the caller's to close
    return SyncJob.Status.COMPLETED, ""


def _rate(client: WordPressClient, stats: dict, seconds: float, requests_before: int) -> dict:
    """What the run achieved against the site, for the job page (issue 17): records, requests
    and seconds, and the limit the site announced with the time pacing to it took."""
    limit = client.pacer.limit
    return {
        "records": sum(counters.get("processed", 0) for counters in stats.values()),
        "requests": client.request_count - requests_before,
        "seconds": round(seconds, 3),
        "limit_per_minute": limit.per_minute if limit else None,
        "paced_seconds": round(client.pacer.waited, 3),
    }


FULL_WALKS = (SyncJob.Kind.INITIAL, SyncJob.Kind.FULL, SyncJob.Kind.RECONCILE)


def expected_sizes(job: SyncJob, entity_types: list[str]) -> dict[str, int]:
    """Each type's size as the connector's previous completed full walk found it (one query).
    Only a full walk needs it: an incremental's size is what changed, unknown until asked."""
    if job.kind not in FULL_WALKS or job.dry_run or job.scope:
        return {}
    previous = (
        SyncJob.objects.filter(
            connector_id=job.connector_id,
            kind__in=FULL_WALKS,
            status=SyncJob.Status.COMPLETED,
            scope={},
            dry_run=False,
        )
        .exclude(pk=job.pk)
        .order_by("-finished_at")
        .values_list("stats", flat=True)
        .first()
    ) or {}
    sizes = {}
    for entity_type in entity_types:
        total = (previous.get(entity_type) or {}).get("total")
        if isinstance(total, int):
            sizes[entity_type] = total
    return sizes


def internal_error(exc: BaseException) -> str:
    """The job's error for an exception nobody expected: what happened, in words."""
    return (
        f"Internal error ({type(exc).__name__}: {str(exc)[:300]}). The sync stopped; "
        "records processed before were kept. Try again or contact support."
    )


def _walked(job: SyncJob, plan: Plan, stats: dict) -> None:
    """After a completed run: a reconciliation's drift, and, after any full walk, the mapping
    revision the connector's records are now stored with."""
    if job.kind == SyncJob.Kind.RECONCILE and plan.count_drift:
        job.drift = drift_of(stats)
        SyncJob.objects.filter(pk=job.pk).update(drift=job.drift)
    if job.kind != SyncJob.Kind.INCREMENTAL:
        Connector.objects.filter(pk=job.connector_id).update(mapping_revision=MAPPING_REVISION)


def finish(job: SyncJob, status: str, error: str = "") -> bool:
    """End the job and update its connector (last/next sync, ERROR/ACTIVE, initial import).

    Returns False when the job had already ended (e.g. swept as stale meanwhile).
    """
    with transaction.atomic():
        if not job.terminate(status, error):
            return False
        if job.is_partial:
            # A preview, one type or a few records: says nothing of the connector as a whole,
            # so its status, schedule and first import are left as they are.
            return True
        # Locked so a concurrent settings save or pause cannot interleave with these fields.
        connector = Connector.objects.select_for_update().get(pk=job.connector_id)
        now = job.finished_at or timezone.now()
        connector.last_sync_at = now
        fields = ["last_sync_at", "updated_at"]
        # A manual sync keeps the schedule's rhythm: a scheduled run still ahead stays where
        # it is (the one it ran over is the manual sync itself, so that one moves on).
        if job.trigger != SyncJob.Trigger.MANUAL or not (
            connector.next_sync_at and connector.next_sync_at > now
        ):
            connector.next_sync_at = connector.compute_next_sync_at(now)
            fields.append("next_sync_at")
        if connector.next_reconcile_at is None and status == SyncJob.Status.COMPLETED:
            # The first reconciliation, one period after the first completed sync (before
            # it there is nothing to compare); the scheduler sets the next ones.
            connector.next_reconcile_at = connector.compute_next_reconcile_at(now)
            fields.append("next_reconcile_at")
        if connector.status != Connector.Status.PAUSED:
            if status == SyncJob.Status.FAILED:
                connector.status = Connector.Status.ERROR
                connector.status_message = f"Last sync (job #{job.pk}) failed: {error}"
                fields += ["status", "status_message"]
            elif status == SyncJob.Status.COMPLETED:
                connector.status = Connector.Status.ACTIVE
                connector.status_message = ""
                fields += ["status", "status_message"]
        # The first completed sync of any kind is the connector's first import: a full or
        # first scheduled sync reads everything just like an initial import does.
        if status == SyncJob.Status.COMPLETED and not connector.initial_import_done_at:
            connector.initial_import_done_at = now
            fields.append("initial_import_done_at")
        connector.save(update_fields=fields)
    alerts.job_finished(job)  # notifications and auto-pause; never raises
    metrics.job_finished(job)
    return True


def run_job(job_id: int, *, source=None, due_at=None) -> SyncJob | None:
    """Claim, run and finish one job. A job that is not PENDING any more is left alone.
    `due_at`: when the scheduler found it due (the schedule lag metric)."""
    with log_context(job_id=job_id):
        job = SyncJob.claim(job_id)
        if job is None:
            logger.info("sync job %s not claimed (already taken, cancelled or gone)", job_id)
            return None
        try:
            metrics.job_started(job, due_at)
            with log_context(
                connector_id=job.connector_id, organisation=job.connector.organisation.slug
            ):
                logger.info("sync job %s (%s) started", job.pk, job.kind)
                job = _run_claimed(job, source)
                logger.info("sync job %s ended %s", job.pk, job.status)
                return job
        except Exception as exc:
            # From the claim on the job is RUNNING: whatever fails outside the run itself
            # (a metric, the log context) ends it too, never the sweeper minutes later.
            logger.exception("sync job %s crashed", job.pk)
            _end_alone(job, internal_error(exc))
            job.refresh_from_db()
            return job


def _run_claimed(job: SyncJob, source) -> SyncJob:
    heartbeat = Heartbeat(job)
    heartbeat.start()
    try:
        status, error = execute(job, source=source, heartbeat=heartbeat)
    except Exception as exc:
        # Whatever execute() did not foresee (its set-up: the plan, the client, the store)
        # ends the job FAILED now, with its reason, instead of leaving it RUNNING until the
        # sweeper calls it "worker stopped responding" and every new sync waits meanwhile.
        logger.exception("sync job %s crashed", job.pk)
        status, error = SyncJob.Status.FAILED, internal_error(exc)
    finally:
        heartbeat.stop()
    try:
        finish(job, status, error)
    except Exception as exc:
        # finish() ends the job in one transaction with its connector's update, so a failing
        # update would leave the job RUNNING: end the job's row alone. A run that failed
        # keeps its own reason; one that went well failed at the bookkeeping.
        logger.exception("sync job %s could not be ended %s", job.pk, status)
        _end_alone(job, error if status == SyncJob.Status.FAILED else internal_error(exc))
    job.refresh_from_db()
    return job


def _end_alone(job: SyncJob, error: str) -> None:
    """The job FAILED with `error` when finish() cannot end it: its own row first, then
    (each on its own, so one failure does not undo the rest) the connector's status and the
    notifications."""
    if not job.terminate(SyncJob.Status.FAILED, error):
        return  # ended meanwhile (cancelled, swept): that end stands
    if not job.is_partial:  # as in finish(): a preview or repair leaves the connector be
        try:
            Connector.objects.filter(pk=job.connector_id).exclude(
                status=Connector.Status.PAUSED
            ).update(
                status=Connector.Status.ERROR,
                status_message=f"Last sync (job #{job.pk}) failed: {error}",
                updated_at=timezone.now(),
            )
        except Exception:
            logger.exception("connector of sync job %s not marked ERROR", job.pk)
    alerts.job_finished(job)  # never raises
    metrics.job_finished(job)  # never raises
