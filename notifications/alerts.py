"""Deciding what to notify: the connector's health state changes as its jobs end (called by
the runner's finish()) and as time passes (stale data, `manage.py notifications_check`).

Every decision is a state change on ConnectorHealth, so five failures in a row make one
"failing" notification and the good sync after them one "recovered". Auto-pause lives here
too: it is the last state change of a failing streak. Nothing here sends anything: it records
Delivery rows and hands them to Celery after commit (notifications.delivery), so a slow mail
server or webhook receiver never holds up a sync.
"""

from __future__ import annotations

import logging
import statistics
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record
from connectors.models import Connector
from notifications import messages
from notifications.causes import cause_from_message
from notifications.delivery import notify
from notifications.models import ConnectorHealth, Event, OrganisationSettings
from syncjobs.models import SyncJob

logger = logging.getLogger(__name__)

# "Much longer than usual": more than this many times the median of the connector's last
# SLOW_SAMPLE finished jobs of the same kind, and at least SLOW_MIN_DURATION.
SLOW_FACTOR = 3
SLOW_SAMPLE = 20
SLOW_MIN_SAMPLES = 3
SLOW_MIN_DURATION = timedelta(minutes=2)


def job_finished(job: SyncJob) -> None:
    """Evaluate a job that just reached its terminal state. Never raises: a notification
    problem must not turn a finished sync into a crashed one."""
    try:
        _evaluate(job)
    except Exception:
        logger.exception("notifications: evaluating job %s failed", job.pk)


def last_success_subquery(outer="pk"):
    """When the connector's latest COMPLETED job finished (for annotations). A preview
    (dry run) writes nothing, so it is no successful sync."""
    return Subquery(
        SyncJob.objects.filter(
            connector=OuterRef(outer), status=SyncJob.Status.COMPLETED, dry_run=False
        )
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )


def _evaluate(job: SyncJob) -> None:
    if job.status not in (SyncJob.Status.COMPLETED, SyncJob.Status.FAILED):
        # A cancelled job says nothing about the connector's health: neither failure nor
        # recovery (and one cancelled before it started did not even run).
        return
    with transaction.atomic():
        # The connector row lock orders two jobs' evaluations (a manual sync and a swept one).
        connector = (
            Connector.objects.select_for_update(of=("self",))
            .select_related("organisation")
            .get(pk=job.connector_id)
        )
        health, _ = ConnectorHealth.objects.get_or_create(connector=connector)
        before = _state(health)
        org_settings = OrganisationSettings.for_organisation(connector.organisation_id)
        now = job.finished_at or timezone.now()
        if job.status == SyncJob.Status.FAILED:
            _on_failure(job, connector, health, org_settings, now)
        else:
            _on_success(job, connector, health, org_settings)
        _check_slow(job, connector, health, org_settings)
        if _state(health) != before:  # most jobs change nothing: no write (bench/fleet.py)
            health.save()


def _state(health: ConnectorHealth) -> list:
    return [getattr(health, field.attname) for field in ConnectorHealth._meta.concrete_fields]


def _on_failure(job, connector, health, org_settings, now) -> None:
    health.consecutive_failures += 1
    health.failure_cause = getattr(job, "error_cause", "") or cause_from_message(job.error)
    if health.failing_since is None:
        health.failing_since = now
        # One notification for the change from good to failing; its kind says whether the
        # connector went into ERROR (a paused connector's manual sync fails without it).
        event = Event.ERROR if connector.status == Connector.Status.ERROR else Event.FAILED
        notify(connector, event, job, *messages.failing(connector, job), settings=org_settings)
    limit = org_settings.auto_pause_after_failures
    if (
        limit
        and health.consecutive_failures >= limit
        and now - health.failing_since >= timedelta(hours=org_settings.auto_pause_after_hours)
        and not connector.is_paused
    ):
        _auto_pause(job, connector, health, org_settings, now)


def _auto_pause(job, connector, health, org_settings, now) -> None:
    since = timezone.localtime(health.failing_since).strftime("%Y-%m-%d %H:%M %Z")
    reason = (
        f"Paused automatically after {health.consecutive_failures} failed syncs in a row "
        f"(failing since {since}). Last error: {job.error} Fix the cause, then Resume."
    )
    previous = connector.status
    connector.status = Connector.Status.PAUSED
    connector.status_message = reason
    connector.next_sync_at = None
    connector.save(update_fields=["status", "status_message", "next_sync_at", "updated_at"])
    health.auto_paused_at = now
    health.auto_pause_reason = reason
    record(
        connector,
        AuditEvent.Action.PAUSED,
        actor=None,  # the system; the audit log shows it as such
        changes={
            "status": {"before": previous, "after": Connector.Status.PAUSED},
            "status_message": {"before": "", "after": reason},
        },
    )
    notify(
        connector,
        Event.AUTO_PAUSED,
        job,
        *messages.auto_paused(connector, job, reason),
        settings=org_settings,
    )


def _on_success(job, connector, health, org_settings) -> None:
    if health.failing_since is not None:
        notify(
            connector,
            Event.RECOVERED,
            job,
            *messages.recovered(connector, job, health),
            settings=org_settings,
        )
    health.failing_since = None
    health.consecutive_failures = 0
    health.failure_cause = ""
    health.stale_since = None
    totals = job.totals()
    failed, processed = totals.get("failed", 0), totals.get("processed", 0)
    # At least N failed records and more than P % of those processed (the organisation's
    # thresholds, 10 and 5 % by default): a couple of broken posts are no news.
    too_many = (
        failed >= max(org_settings.failed_records_min, 1)
        and failed * 100 > org_settings.failed_records_percent * processed
    )
    if too_many and not health.failed_records_alerted:
        notify(
            connector,
            Event.FAILED_RECORDS,
            job,
            *messages.failed_records(connector, job, failed, processed),
            settings=org_settings,
        )
    health.failed_records_alerted = too_many


def usual_duration(job: SyncJob) -> timedelta | None:
    """The median duration of the connector's previous finished jobs of the same kind."""
    previous = (
        SyncJob.objects.filter(
            connector_id=job.connector_id,
            kind=job.kind,
            status__in=(SyncJob.Status.COMPLETED, SyncJob.Status.FAILED),
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .exclude(pk=job.pk)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:SLOW_SAMPLE]
    )
    durations = [finished - started for started, finished in previous]
    if len(durations) < SLOW_MIN_SAMPLES:
        return None  # too little history to call anything unusual
    return statistics.median(durations)


def _check_slow(job, connector, health, org_settings) -> None:
    duration = job.duration
    if duration is None:
        return
    # Shorter than SLOW_MIN_DURATION is never slow: the history is not read (a query per job).
    usual = usual_duration(job) if duration >= SLOW_MIN_DURATION else None
    slow = usual is not None and duration >= SLOW_MIN_DURATION and duration > SLOW_FACTOR * usual
    if slow and not health.slow_alerted:
        notify(
            connector,
            Event.SLOW,
            job,
            *messages.slow(connector, job, duration, usual),
            settings=org_settings,
        )
    health.slow_alerted = slow


def stale_after(connector: Connector) -> timedelta | None:
    """How long without a successful sync makes the connector's data stale (None: never)."""
    delta = connector.frequency_delta
    if delta is None:
        return None
    return 2 * delta + timedelta(seconds=settings.NOTIFICATIONS_STALE_GRACE_SECONDS)


def check_stale(now=None) -> int:
    """Notify every scheduled, unpaused connector whose data just became stale; returns how
    many. Manual connectors are excluded: nothing promised a fresh copy of their data."""
    now = now or timezone.now()
    found = 0
    for frequency, delta in Connector.FREQUENCY_DELTAS.items():
        cutoff = now - 2 * delta - timedelta(seconds=settings.NOTIFICATIONS_STALE_GRACE_SECONDS)
        candidates = (
            Connector.objects.filter(frequency=frequency)
            .exclude(status=Connector.Status.PAUSED)
            .annotate(last_ok=Coalesce(last_success_subquery(), "created_at"))
            .filter(last_ok__lt=cutoff)
            .filter(Q(health__isnull=True) | Q(health__stale_since__isnull=True))
            .values_list("pk", flat=True)
        )
        for connector_id in candidates:
            if _mark_stale(connector_id, cutoff, now):
                found += 1
    return found


def _mark_stale(connector_id, cutoff, now) -> bool:
    with transaction.atomic():
        connector = (
            Connector.objects.select_for_update(of=("self",))
            .select_related("organisation")
            .annotate(last_ok=last_success_subquery())
            .get(pk=connector_id)
        )
        health, _ = ConnectorHealth.objects.get_or_create(connector=connector)
        # Checked again under the lock: a sync may have completed since the query above.
        if health.stale_since is not None or (connector.last_ok and connector.last_ok >= cutoff):
            return False
        health.stale_since = now
        health.save(update_fields=["stale_since"])
        org_settings = OrganisationSettings.for_organisation(connector.organisation_id)
        notify(
            connector,
            Event.STALE,
            None,
            *messages.stale(connector, connector.last_ok),
            settings=org_settings,
        )
    return True


def clear_auto_pause(connector: Connector) -> None:
    """Resume clears the auto-pause and its failure count: the admin has looked at it, so
    the next streak starts from zero before the connector is paused again."""
    ConnectorHealth.objects.filter(connector=connector).update(
        auto_paused_at=None, auto_pause_reason="", consecutive_failures=0
    )
