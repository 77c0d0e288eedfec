"""Charts for people who would rather look than read: the geometry of small server-rendered
SVG bar charts, and the figures they show.

No JavaScript and no library: a view builds a chart here (plain numbers: each bar's segments
with their x, y, width and height in the SVG's own units) and
templates/components/_bar_chart.html draws it, with the numbers in a table beside it (the
text alternative) and on hover (each bar's <title>). Colours are CSS classes (static/css/
app.css), never style attributes: the CSP allows no inline style.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from records.models import EntityType
from syncjobs.models import SyncJob

# The SVG's coordinate system; it scales to the card's width (a phone's included).
WIDTH, HEIGHT = 600, 170
LEFT, BOTTOM, TOP = 46, 20, 8
RECENT_JOBS = 30


def nice_ceiling(value: float) -> float:
    """The axis maximum: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover (the loop ends at 10)


def bar_chart(
    key: str,
    title: str,
    bars: list[dict],
    series: list[tuple[str, str]],
    *,
    unit: str = "",
    x_label: str = "Job",
) -> dict:
    """A stacked bar chart. `bars`: [{"label": str, "href": str | None, "values": {series key:
    number}}], left to right; `series`: [(key, label)], bottom to top (the CSS class is
    chart-<key>). Returns what _bar_chart.html draws, and the same numbers as a table."""
    top = nice_ceiling(max((sum(bar["values"].values()) for bar in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(bars), 1)
    drawn = []
    for index, bar in enumerate(bars):
        base = HEIGHT - BOTTOM
        rects = []
        for series_key, label in series:
            value = bar["values"].get(series_key, 0)
            if not value:
                continue
            height = plot_h * value / top
            base -= height
            rects.append(
                {
                    "y": round(base, 2),
                    "height": round(max(height, 0.5), 2),
                    "series": series_key,
                    "label": label,
                    "value": value,
                }
            )
        drawn.append(
            {
                "x": round(LEFT + index * slot + slot * 0.15, 2),
                "width": round(max(slot * 0.7, 0.5), 2),
                "label": bar["label"],
                "href": bar.get("href"),
                "rects": rects,
                "values": [bar["values"].get(series_key, 0) for series_key, _ in series],
                "total": sum(bar["values"].values()),
            }
        )
    ticks = [
        {"y": round(HEIGHT - BOTTOM - plot_h * fraction, 2), "label": _short(top * fraction)}
        for fraction in (0, 0.5, 1)
    ]
    return {
        "key": key,
        "title": title,
        "x_label": x_label,
        "unit": unit,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "baseline": HEIGHT - BOTTOM,
        "ticks": ticks,
        "bars": drawn,
        "series": series,
        "first_label": bars[0]["label"] if bars else "",
        "last_label": bars[-1]["label"] if bars else "",
        "empty": not any(bar["total"] for bar in drawn),
    }


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def recent_job_charts(connector) -> list[dict]:
    """The connector's last 30 finished jobs: records processed (and failed), duration, and
    records per entity type; oldest on the left."""
    jobs = list(
        connector.jobs.filter(status__in=SyncJob.TERMINAL_STATUSES).order_by("-created_at", "-id")[
            :RECENT_JOBS
        ]
    )[::-1]
    if not jobs:
        return []
    records, durations, per_type = [], [], []
    types_seen: set[str] = set()
    for job in jobs:
        totals = job.totals()
        failed = totals.get("failed", 0) + totals.get("push_failed", 0)
        label = f"#{job.pk} {job.get_kind_display().lower()} ({job.get_status_display().lower()})"
        href = job.get_absolute_url()
        records.append(
            {
                "label": label,
                "href": href,
                "values": {
                    "ok": max(totals.get("processed", 0) - totals.get("failed", 0), 0),
                    "failed": failed,
                },
            }
        )
        seconds = round(job.duration.total_seconds()) if job.duration else 0
        durations.append({"label": label, "href": href, "values": {"duration": seconds}})
        values = {}
        for entity_type, counters in (job.stats or {}).items():
            if isinstance(counters, dict) and counters.get("processed"):
                values[entity_type] = counters["processed"]
                types_seen.add(entity_type)
        per_type.append({"label": label, "href": href, "values": values})
    type_series = [(t, EntityType(t).label) for t in EntityType.values if t in types_seen]
    return [
        bar_chart(
            "records",
            "Records processed per job",
            records,
            [("ok", "Succeeded"), ("failed", "Failed")],
            unit="records",
        ),
        bar_chart("duration", "Duration per job", durations, [("duration", "Seconds")], unit="s"),
        bar_chart(
            "types",
            "Records per entity type, per job",
            per_type,
            type_series,
            unit="records",
        ),
    ]


# A failed job's error, reduced to its cause: without its ids, counts, times, quoted values
# and parenthesised details, so the same failure on two jobs is one cause. Three-digit numbers
# stay: an HTTP status (401, 503) is the cause.
_VARIABLE = re.compile(
    r"(#\d+|\d{4}-\d\d-\d\d[\dT:.+\- ]*(UTC)?|\b(?![1-5]\d\d\b)\d[\d.,:]*\b"
    r"|'[^']*'|\"[^\"]*\"|\([^)]*\))"
)


def failure_cause(error: str) -> str:
    first = (error or "No error message").strip().split("\n", 1)[0]
    first = re.split(r"(?<=\.)\s", first, maxsplit=1)[0]
    cause = _VARIABLE.sub("…", first)
    cause = re.sub(r"(…\s*)+", "… ", cause).strip()
    cause = re.sub(r"\s+([,.;:])", r"\1", cause)
    return cause[:90]


def platform_charts(connectors, now=None) -> dict:
    """Platform → Connectors: jobs per hour over 7 days (completed / failed / cancelled),
    and the failures of those days by cause. `connectors`: the page's scope."""
    now = now or timezone.now()
    since = platform_window_start(now)
    jobs = SyncJob.objects.filter(
        connector__in=connectors.values("pk"), finished_at__gte=since, finished_at__lte=now
    )
    per_hour: dict = {}
    for hour, status, n in (
        jobs.annotate(hour=TruncHour("finished_at"))
        .values_list("hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        per_hour.setdefault(hour, Counter())[status] += n
    bars = []
    hour = since
    while hour <= now:
        counts = per_hour.get(hour, Counter())
        label = timezone.localtime(hour).strftime("%a %d %b %H:00 UTC")
        bars.append(
            {
                "label": label,
                "values": {
                    "completed": counts.get(SyncJob.Status.COMPLETED, 0),
                    "failed": counts.get(SyncJob.Status.FAILED, 0),
                    "cancelled": counts.get(SyncJob.Status.CANCELLED, 0),
                },
            }
        )
        hour += timedelta(hours=1)
    # Grouped by message in the database first: the same failure on many jobs (a site down
    # for a day) is one message to reduce to its cause, not one per job.
    causes = Counter()
    messages = (
        jobs.filter(status=SyncJob.Status.FAILED)
        .values_list("error")
        .annotate(n=Count("id"))
        .order_by("-n")[:5000]
    )
    for error, n in messages:
        causes[failure_cause(error)] += n
    biggest = max(causes.values(), default=0)
    return {
        "per_hour": bar_chart(
            "hours",
            "Jobs per hour, last 7 days",
            bars,
            [("completed", "Completed"), ("failed", "Failed"), ("cancelled", "Cancelled")],
            unit="jobs",
            x_label="Hour",
        ),
        "causes": [
            {"cause": cause, "count": n, "percent": round(100 * n / biggest)}
            for cause, n in causes.most_common(8)
        ],
        "failed_total": sum(causes.values()),
    }


# Platform → Connectors shows these charts from a cache for at most a minute: the
# `{% cache %}` fragment in templates/platform_admin/_charts.html, each process's own
# (Django's default cache), keyed on the hour the 7 days start. Measured with
# bench/platform_connectors.py (10,000 connectors, 30,000 jobs in the window): computing the
# charts took 72 ms of the page's 174 ms (26 ms of SQL, the rest reducing 5,000 error
# messages to their causes; grouping them by message in SQL first halved that), drawing the
# 169 bars a few ms more, and both grow with the week's jobs; from the cache, the page costs
# little more than its table (the bench's "cold cache" line is the once-a-minute draw).
# Why a cache and not hourly rollup rows: the bars are per hour over 7 days, so a minute's
# delay is invisible, while rollups would have to be kept right on every path that ends,
# sweeps or deletes a job (a deleted connector's jobs leave the chart today). Why no
# invalidation when a job ends: on a busy platform one ends every few seconds, so a key that
# changed with each would never be hit; the TTL bounds the work to once a minute per process.
PLATFORM_CHARTS_SECONDS = 60


def platform_window_start(now):
    """The first hour of the platform's 7 days (the hour they are drawn from)."""
    return (now - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
