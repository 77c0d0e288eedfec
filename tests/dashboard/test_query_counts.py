"""Overview and Sync History cost the same number of queries with 3 jobs or 70: nothing on
them (the status card, the statistics, the last-30-jobs charts, the history table and its
pager) runs a query per job."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from syncjobs.models import SyncJob

from .conftest import make_job, make_log


def _add_jobs(connector, user, n, *, offset):
    now = timezone.now()
    kinds = [SyncJob.Kind.FULL, SyncJob.Kind.INCREMENTAL, SyncJob.Kind.RECONCILE]
    statuses = ["COMPLETED", "COMPLETED", "FAILED", "CANCELLED"]
    for i in range(n):
        start = now - timedelta(hours=offset + n - i)
        job = make_job(
            connector,
            kind=kinds[i % 3],
            status=statuses[i % 4],
            trigger=SyncJob.Trigger.MANUAL if i % 2 else SyncJob.Trigger.SCHEDULER,
            triggered_by=user if i % 2 else None,
            error="HTTP 503 from the site." if statuses[i % 4] == "FAILED" else "",
            created_at=start,
            started_at=start,
            finished_at=start + timedelta(seconds=40),
            stats={"article": {"processed": 10 + i, "failed": i % 3}, "member": {"processed": 2}},
        )
        make_log(job, 2, start=1000 * (offset + i))


@pytest.mark.parametrize("page", ["detail", "history"])
def test_overview_and_history_queries_do_not_grow_with_the_jobs(
    alice_client, alice, connector_a, page
):
    url = reverse(f"connectors:{page}", args=["acme", connector_a.pk])

    def count():
        with CaptureQueriesContext(connection) as queries:
            response = alice_client.get(url)
        assert response.status_code == 200
        return len(queries), [q["sql"] for q in queries.captured_queries]

    _add_jobs(connector_a, alice, 3, offset=200)
    few, _ = count()
    _add_jobs(connector_a, alice, 67, offset=0)
    many, many_sql = count()
    assert many == few, "\n".join(many_sql)
