"""The store on PostgreSQL: its two-way batch stays on its index, a deleted job gets no log rows."""

from django.db import connection

from records.models import Article
from syncjobs.engine.store import DjangoStore
from syncjobs.models import SyncJob
from tests.conftest import make_connector


def plan_of(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_pending_pushes_is_batched_on_the_partial_index(org_a):
    # Two-way incremental runs list the records edited on the platform since their last sync
    # (DjangoStore.pending_pushes): a batched query that must read the few edited records
    # through the partial index, not walk the connector's records, whatever the statistics.
    from datetime import UTC, datetime, timedelta

    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    from syncjobs.models import SyncLogEntry

    mine = make_connector(org_a, name="This site")
    synced = datetime(2026, 1, 1, tzinfo=UTC)
    Article.objects.bulk_create(
        Article(
            organisation=org_a,
            connector=mine,
            external_id=str(i),
            slug=f"a-{i}",
            title=f"Article {i}",
            source_modified_at=synced - timedelta(days=1),
            last_synced_at=synced,
        )
        for i in range(3000)
    )
    edited = lambda ids, **extra: Article.objects.filter(  # noqa: E731
        connector=mine, external_id__in=[str(i) for i in ids]
    ).update(platform_modified_at=synced + timedelta(hours=1), **extra)
    edited([10, 20, 30, 40, 50, 60])  # pending
    edited([70], archived_at=synced)  # deleted in WordPress: nothing to push
    edited([80], source_modified_at=synced + timedelta(hours=2))  # WordPress edit is newer
    Article.objects.filter(connector=mine, external_id="90").update(  # edit already synced
        platform_modified_at=synced - timedelta(hours=1)
    )
    # synced after its platform edit (on the platform's clock): nothing pending
    Article.objects.filter(connector=mine, external_id="40").update(last_synced_at=F("updated_at"))
    job = SyncJob.objects.create(connector=mine, kind="INCREMENTAL")
    SyncLogEntry.objects.create(  # decided in this job's pages already
        job=job,
        connector=mine,
        entity_type="article",
        external_id="60",
        operation="SYNC",
        status="FAILED",
    )
    store = DjangoStore(job, mine)

    found, after, batches = [], None, 0
    with CaptureQueriesContext(connection) as queries:
        while True:
            batch, after = store.pending_pushes("article", after, 2)
            batches += 1
            found += [(ex.external_id, values["title"]) for ex, values in batch]
            if after is None:
                break

    expected = [("10", "Article 10"), ("20", "Article 20"), ("30", "Article 30")]
    assert found == [*expected, ("50", "Article 50")]
    # Candidates 10, 20 | 30, 50 | 60 (logged, so left out): per batch, two queries (the
    # candidates, then one probe of the job's log for all of them), none per record.
    assert batches == 3 and len(queries) == 2 * batches
    plan = plan_of(queries[0]["sql"], [])
    assert "article_pending_push_idx" in plan, plan
    assert "Seq Scan on records_article" not in plan, plan


def test_a_page_of_a_deleted_job_writes_no_log_rows(org_a):
    # The log's foreign keys are not database constraints (one check per row was a quarter
    # of a page's write): the page statement takes job and connector from the job row, so
    # a job deleted under a running sync leaves no orphan log rows.
    from syncjobs.engine.plan import LogLine, PageCommit
    from syncjobs.models import SyncLogEntry

    mine = make_connector(org_a, name="This site")
    job = SyncJob.objects.create(connector=mine, kind="FULL")
    store = DjangoStore(job, mine)
    line = lambda external_id: LogLine("article", external_id, "CREATE", "FAILED", "bad", None)  # noqa: E731
    stats = {"article": {"processed": 1}}

    store.commit_page(PageCommit("article", [], [line("1")], stats, {}))
    assert list(SyncLogEntry.objects.values_list("job_id", "connector_id", "external_id")) == [
        (job.pk, mine.pk, "1")
    ]
    SyncJob.objects.filter(pk=job.pk).delete()
    store.commit_page(PageCommit("article", [], [line("2")], stats, {}))
    assert not SyncLogEntry.objects.exists()
    store.close()
