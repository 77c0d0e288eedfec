"""The job log at the scale the issue names: hundreds of thousands of rows in one job.

Every query the job page and the activity feed run is EXPLAINed (ANALYZE) on PostgreSQL with
300,000 rows in the table: none may scan the log sequentially, and none may read more rows
than a page or two, whatever the filters and however deep the cursor. A timing alone would
not prove it on a shared machine; the plan does."""

import json
import re

import pytest
from django.db import connection
from django.db.models import Max, Min
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from syncjobs.models import SyncLogEntry

from .conftest import make_job

ROWS = 300_000
# Rows a log query may read: a page (50) + 1, the EXISTS probes, and slack for the planner
# walking an index past rows that a second filter rejects (1 in 7 entity types, 1 in 1000).
MAX_ROWS_READ = 5_000


def _fill(job):
    """300,000 rows in one statement: 7 entity types in turn, one failure in a thousand."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO syncjobs_synclogentry
                (job_id, connector_id, entity_type, external_id, internal_id, operation,
                 status, error, processed_at)
            SELECT %s, %s,
                   (ARRAY['article','member','event','document','conference','company',
                          'notification'])[1 + n %% 7],
                   n::text, NULL,
                   CASE WHEN n %% 3 = 0 THEN 'UPDATE' ELSE 'CREATE' END,
                   CASE WHEN n %% 1000 = 0 THEN 'FAILED' ELSE 'SUCCESS' END,
                   CASE WHEN n %% 1000 = 0 THEN 'Title is empty' ELSE '' END,
                   now() - make_interval(secs => %s - n)
            FROM generate_series(1, %s) AS n
            """,
            [job.pk, job.connector_id, ROWS, ROWS],
        )
        cursor.execute("ANALYZE syncjobs_synclogentry")


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _check_log_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    log_sql = [q["sql"] for q in captured.captured_queries if "syncjobs_synclogentry" in q["sql"]]
    assert log_sql, url
    for sql in log_sql:
        assert "COUNT(" not in sql.upper() and "OFFSET" not in sql.upper(), sql
        with connection.cursor() as cursor:
            # The captured SQL has its parameters inlined by Django's debug cursor.
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        scans = [
            node
            for node in _nodes(plan[0]["Plan"])
            if node.get("Relation Name") == "syncjobs_synclogentry"
        ]
        assert scans, (url, sql)
        for node in scans:
            assert node["Node Type"] != "Seq Scan", (url, sql)
            read = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
            read += node.get("Rows Removed by Filter", 0)
            assert read <= MAX_ROWS_READ, (url, read, sql)
    return response.text


@pytest.mark.slow
def test_job_log_pages_stay_index_bound_at_300k_rows(alice_client, connector_a):
    assert connection.vendor == "postgresql", "set DATABASE_URL: these are PostgreSQL's plans"
    job = make_job(connector_a)
    _fill(job)
    bounds = SyncLogEntry.objects.filter(job=job).aggregate(low=Min("id"), high=Max("id"))
    low, high = bounds["low"], bounds["high"]
    middle = (low + high) // 2
    base = reverse("syncjobs:detail", args=["acme", connector_a.pk, job.pk])
    first = _check_log_queries(alice_client, base)
    assert str(ROWS) in first  # newest row on the first page

    # Deep in the log, both directions.
    html = _check_log_queries(alice_client, f"{base}?before={middle}")
    assert 'rel="next"' in html and 'rel="prev"' in html
    _check_log_queries(alice_client, f"{base}?after={middle}")
    _check_log_queries(alice_client, f"{base}?before={low + 60}")

    # Each filter alone, rare and common values, and combined.
    failed = _check_log_queries(alice_client, f"{base}?status=FAILED")
    assert failed.count("Title is empty") == 50
    _check_log_queries(alice_client, f"{base}?status=FAILED&before={low + 100_000}")
    _check_log_queries(alice_client, f"{base}?entity_type=company")
    _check_log_queries(alice_client, f"{base}?operation=UPDATE&before={low + 200_000}")
    _check_log_queries(alice_client, f"{base}?entity_type=member&status=FAILED")
    searched = _check_log_queries(alice_client, f"{base}?q=123456")
    assert len(re.findall(r'<td class="mono">123456</td>', searched)) == 1

    # The connector's activity feed reads the same table.
    activity = reverse("connectors:activity", args=["acme", connector_a.pk])
    _check_log_queries(alice_client, activity)
    _check_log_queries(alice_client, f"{activity}?before={middle}")
