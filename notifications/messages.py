"""The words of each notification: a subject that names the connector and what happened, and
a plain-text body with what happened, since when, the error in words and the link to the job.
Webhooks send the same text (Slack shows `text`)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

PREFIX = "[Association App]"


def absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path if settings.SITE_URL else path


def when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z") if moment else "never"


def _job_lines(job) -> list[str]:
    if job is None:
        return []
    return [
        f"Job: {job.get_kind_display()} #{job.pk}",
        f"Open it: {absolute(job.get_absolute_url())}",
    ]


def _footer(connector) -> list[str]:
    return [
        "",
        f"Organisation: {connector.organisation.name}",
        f"Connector: {connector.name} ({connector.site_url})",
        "",
        "You receive this as an administrator of the organisation. Choose which notifications "
        f"you get, or mute your email: {absolute(notifications_path(connector.organisation))}",
    ]


def notifications_path(organisation) -> str:
    return reverse("notifications:settings", args=[organisation.slug])


def failing(connector, job) -> tuple[str, str]:
    subject = f"{PREFIX} {connector.name}: sync failed"
    paused = " The connector is paused, so only manual syncs run." if connector.is_paused else ""
    body = [
        f"The sync of {connector.name} failed at {when(job.finished_at)}.{paused}",
        "",
        "What went wrong:",
        job.error or "No error message was recorded.",
        "",
        "Until a sync succeeds, the platform keeps the data of the last successful sync. "
        "Scheduled syncs keep retrying; you will get one more message when it works again "
        "(not one per failed attempt).",
        *_job_lines(job),
        *_footer(connector),
    ]
    return subject, "\n".join(body)


def auto_paused(connector, job, reason) -> tuple[str, str]:
    subject = f"{PREFIX} {connector.name}: paused automatically after repeated failures"
    body = [
        reason,
        "",
        "No scheduled sync runs until someone clicks Resume on the connector's page; "
        "Run Full Sync still works to test a fix.",
        *_job_lines(job),
        f"Connector: {absolute(connector.get_absolute_url())}",
        *_footer(connector),
    ]
    return subject, "\n".join(body)


def recovered(connector, job, health) -> tuple[str, str]:
    count = health.consecutive_failures
    subject = f"{PREFIX} {connector.name}: syncing again"
    body = [
        f"The sync of {connector.name} completed at {when(job.finished_at)}, after "
        f"{count} failed sync{'s' if count != 1 else ''} since {when(health.failing_since)}.",
        *_job_lines(job),
        *_footer(connector),
    ]
    return subject, "\n".join(body)


def failed_records(connector, job, failed, processed) -> tuple[str, str]:
    subject = f"{PREFIX} {connector.name}: sync completed with {failed} failed records"
    body = [
        f"The sync of {connector.name} completed at {when(job.finished_at)}, but {failed} of "
        f"{processed} records could not be imported. The job's record log says why for each "
        "(filter by status Failed).",
        *_job_lines(job),
        *_footer(connector),
    ]
    return subject, "\n".join(body)


def slow(connector, job, duration, usual) -> tuple[str, str]:
    minutes = round(duration.total_seconds() / 60, 1)
    usual_minutes = round(usual.total_seconds() / 60, 1)
    subject = f"{PREFIX} {connector.name}: sync took much longer than usual"
    body = [
        f"The {job.get_kind_display().lower()} of {connector.name} took {minutes} minutes "
        f"(usually about {usual_minutes}). The WordPress site may be slow or overloaded.",
        *_job_lines(job),
        *_footer(connector),
    ]
    return subject, "\n".join(body)


def stale(connector, last_ok) -> tuple[str, str]:
    subject = f"{PREFIX} {connector.name}: data is stale"
    since = f"since {when(last_ok)}" if last_ok else "ever"
    body = [
        f"{connector.name} has had no successful sync {since}, although it is scheduled "
        f"{connector.get_frequency_display().lower()}. The platform's copy of its data is "
        "out of date.",
        f"Connector: {absolute(connector.get_absolute_url())}",
        *_footer(connector),
    ]
    return subject, "\n".join(body)


def digest(organisation, deliveries) -> tuple[str, str]:
    count = len(deliveries)
    subject = f"{PREFIX} {organisation.name}: {count} notification{'s' if count != 1 else ''}"
    body = [f"What happened to {organisation.name}'s connectors since the last digest:", ""]
    for delivery in deliveries:
        body += [f"— {when(delivery.created_at)} · {delivery.subject}", delivery.body, ""]
    return subject, "\n".join(body)
