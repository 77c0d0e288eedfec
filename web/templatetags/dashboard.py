"""Template helpers of the dashboard: `{% load dashboard %}`.

On Django 5.2 this library also carries the partials tags (partialdef / partial) of
django-template-partials, so templates never `{% load partials %}`: on Django 6 the same
tags are built in and the templates move over unchanged.
"""

import json
from datetime import timedelta

import django
from django import template
from django.utils.html import format_html

register = template.Library()

if django.VERSION < (6, 0):  # pragma: no branch
    from template_partials.templatetags.partials import register as _partials

    register.tags.update(_partials.tags)

# Status values of connectors, jobs and log rows -> the badge modifier in app.css.
BADGES = {
    "ACTIVE": "active",
    "PAUSED": "paused",
    "ERROR": "error",
    "PENDING": "pending",
    "RUNNING": "running",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "SUCCESS": "success",
    "SKIPPED": "skipped",
    "CONFLICT": "conflict",
}


@register.filter
def badge(status) -> str:
    return "badge badge-" + BADGES.get(str(status), "neutral")


@register.filter
def duration(value) -> str:
    """A timedelta as "2h 05m", "3m 07s" or "12.4s"."""
    if value is None or value == "":
        return "—"
    if not isinstance(value, timedelta):
        value = timedelta(seconds=float(value))
    seconds = value.total_seconds()
    if 0 < seconds < 0.05:
        # "0.0s" read as "did nothing" (or a broken clock) for a real sync that was fast.
        return "under 0.1s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def web_url(value) -> str:
    """The URL if it is http(s), else "" (a synced record could carry javascript: links)."""
    text = str(value or "").strip()
    return text if text.lower().startswith(("http://", "https://", "/")) else ""


@register.filter
def get_item(mapping, key):
    if not isinstance(mapping, dict):
        return None
    return mapping.get(key)


@register.filter
def percent(part, whole) -> int:
    try:
        return min(100, round(100 * int(part) / int(whole))) if int(whole) else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def as_text(value) -> str:
    """An audit value as one line: lists joined, empty shown as an em dash."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def failed_records(stats) -> int:
    """Failed records summed over a job's per-entity-type counters."""
    return sum(
        counters.get("failed") or 0
        for counters in (stats or {}).values()
        if isinstance(counters, dict)
    )


@register.simple_tag
def outcome(job=None, status=None, stats=None, started=True):
    """A job's status badge that tells the truth: a COMPLETED job whose records partly failed
    is "Completed with N failures" (amber, not plain green), and a job cancelled before it
    started says so. Takes a job, or its status and stats (annotated list rows)."""
    if job is not None:
        status, stats, started = job.status, job.stats, job.started_at is not None
    status = str(status or "")
    label, modifier = status.capitalize(), BADGES.get(status, "neutral")
    failed = failed_records(stats) if status == "COMPLETED" else 0
    if failed:
        label = f"Completed with {failed} failure{'s' if failed != 1 else ''}"
        modifier = "pending badge-wrap"  # a longer label may wrap in a narrow column
    elif status == "CANCELLED" and not started:
        label = "Cancelled before it started"
    return format_html('<span class="badge badge-{}">{}</span>', modifier, label)
