"""Charts: the last 30 jobs on the Overview and Sync History, the platform's last 7 days;
server-rendered SVG with the numbers on hover and in a table, and no inline style."""

import re
from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from syncjobs.charts import failure_cause, nice_ceiling

from .conftest import make_job


def chart(html, key):
    start = html.index(f'<figure class="chart chart-{key}">')
    return html[start : html.index("</figure>", start)]


def test_overview_and_history_chart_the_last_30_jobs(alice_client, connector_a):
    now = timezone.now()
    for i in range(32):
        make_job(
            connector_a,
            created_at=now - timedelta(hours=40 - i),
            started_at=now - timedelta(hours=40 - i),
            finished_at=now - timedelta(hours=40 - i) + timedelta(seconds=10 + i),
            stats={
                "article": {"processed": 100 + i, "failed": i % 3},
                "member": {"processed": 5},
            },
        )
    last = connector_a.jobs.order_by("-created_at").first()
    for name in ("detail", "history"):
        html = alice_client.get(reverse(f"connectors:{name}", args=["acme", connector_a.pk])).text
        assert "Last 30 jobs" in html
        records = chart(html, "records")
        assert records.count('<g class="chart-bar">') == 30
        # The newest job on the right, its figures on hover and in the table.
        title = f"#{last.pk} full sync (completed): Succeeded 135, Failed 1</title>"
        assert title in records
        assert re.search(
            rf">#{last.pk} full sync \(completed\)</a></th><td>135</td><td>1</td>", records
        )
        duration = chart(html, "duration")
        assert f"#{last.pk} full sync (completed): Seconds 41 s</title>" in duration
        types = chart(html, "types")
        assert f"#{last.pk} full sync (completed): Article 131, Member 5</title>" in types
        assert 'class="chart-member"' in types and 'class="chart-article"' in types
        assert "style=" not in records + duration + types  # the CSP allows no inline style


def test_no_chart_before_the_first_job(alice_client, connector_a):
    html = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk])).text
    assert "chart-records" not in html


def test_platform_page_charts_jobs_per_hour_and_failures_by_cause(
    root, client, connector_a, connector_b
):
    now = timezone.now()
    for minutes, connector in ((30, connector_a), (50, connector_b)):
        make_job(
            connector,
            status="FAILED",
            finished_at=now - timedelta(minutes=minutes),
            error=(
                f"The worker running this sync stopped responding (last heartbeat "
                f"2026-12-0{minutes // 10} 10:{minutes}:00 UTC), so the job was marked failed."
            ),
        )
    make_job(connector_a, status="FAILED", finished_at=now - timedelta(hours=3), error="HTTP 401")
    make_job(connector_a, finished_at=now - timedelta(hours=3))
    make_job(connector_a, finished_at=now - timedelta(days=9))  # outside the 7 days
    client.force_login(root)
    html = client.get(reverse("platform_admin:connectors")).text
    hours = chart(html, "hours")
    assert hours.count('<g class="chart-bar">') >= 2
    assert re.search(r"<td>1</td><td>1</td><td>0</td>", hours)  # 3 hours ago: 1 ok, 1 failed
    causes = html[html.index('<figure class="chart chart-causes">') :]
    assert "Failures by cause (3 failed jobs)" in causes
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td>", causes)
    assert rows[0] == (
        "The worker running this sync stopped responding …, so the job was marked failed.",
        "2",
    )


def test_axis_and_causes():
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 12, 99, 101, 4500)] == [
        1,
        1,
        5,
        10,
        20,
        100,
        200,
        5000,
    ]
    assert failure_cause("Internal error (KeyError: 'x'). The sync stopped.") == "Internal error …."
    cause = failure_cause("The site answered HTTP 401 for job #12.")
    assert cause == "The site answered HTTP 401 for job …."
    assert failure_cause("") == "No error message"


def test_platform_charts_are_drawn_at_most_once_a_minute(root, client, connector_a):
    """The 7 days come from a cached fragment (syncjobs.charts.PLATFORM_CHARTS_SECONDS): a
    second load within the minute shows the same figures without computing them, and once
    the fragment expires the chart counts the jobs that ended meanwhile."""
    now = timezone.now()
    make_job(connector_a, status="FAILED", finished_at=now - timedelta(hours=2), error="HTTP 401")
    client.force_login(root)
    url = reverse("platform_admin:connectors")

    def load():
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).text
        charts_sql = [q["sql"] for q in queries.captured_queries if "syncjobs_syncjob" in q["sql"]]
        start = html.index('id="platform-charts-heading"')
        return html[start : html.index("</section>", start)], charts_sql

    first, first_sql = load()
    assert "Failures by cause (1 failed job)" in first
    make_job(connector_a, status="FAILED", finished_at=now - timedelta(hours=1), error="HTTP 401")
    second, second_sql = load()
    assert second == first  # the same minute: the cached drawing
    # Only the summary's count of the last 24 hours' failures still reads the jobs.
    assert len(second_sql) == len(first_sql) - 2
    cache.clear()  # the minute is over
    third, _ = load()
    assert "Failures by cause (2 failed jobs)" in third


def test_platform_causes_count_every_job_of_a_repeated_message(root, client, connector_a):
    """Messages are grouped in the database before they are reduced to causes: a message
    that many jobs share still counts each of those jobs."""
    now = timezone.now()
    for minutes in (10, 20, 30):
        make_job(
            connector_a,
            status="FAILED",
            finished_at=now - timedelta(minutes=minutes),
            error="WordPress answered 502",
        )
    make_job(
        connector_a,
        status="FAILED",
        finished_at=now - timedelta(minutes=40),
        error="WordPress answered 502 (job #9).",
    )
    client.force_login(root)
    html = client.get(reverse("platform_admin:connectors")).text
    causes = html[html.index('<figure class="chart chart-causes">') :]
    assert "Failures by cause (4 failed jobs)" in causes
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td>", causes)
    assert rows == [("WordPress answered 502", "3"), ("WordPress answered 502 ….", "1")]
