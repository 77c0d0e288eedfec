"""The store on PostgreSQL: its lookups stay index probes whatever the statistics say, its
two-way batch stays on its index, a deleted job gets no log rows."""

import re

import pytest
from django.db import connection

from records.models import Article
from syncjobs.engine.archive_walk import ARCHIVE_WALK_PLANNING, LOGGED_SQL, archive_walk_sql
from syncjobs.engine.page_writes import REPLACED_LOGS_SQL
from syncjobs.engine.store import DjangoStore, probe_sql
from syncjobs.models import SyncJob
from tests.conftest import make_connector


def plan_of(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize(
    "analysed", [None, "empty", "other"], ids=["never analysed", "empty", "knows other rows"]
)
def test_lookups_stay_index_probes_whatever_the_statistics(org_a, analysed):
    # What a cold import sees: a table the planner has no statistics for, or statistics that
    # only know another connector's rows, while this connector's rows grow. The per-page
    # lookups must probe the composite unique indexes, never read the connector's rows
    # through the index's first column and filter them (that made each page's lookup grow
    # with the table: a third of a 100,000-record sync).
    other = make_connector(org_a, name="Other site")
    mine = make_connector(org_a, name="This site")

    def articles(connector, n):
        return [
            Article(organisation=org_a, connector=connector, external_id=str(i), slug=f"{n}-{i}")
            for i in range(3000)
        ]

    if analysed == "empty":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE records_article")
    Article.objects.bulk_create(articles(other, 0))
    if analysed == "other":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE records_article")
    Article.objects.bulk_create(articles(mine, 1))
    ids = [str(i) for i in range(0, 3000, 30)]

    existing = plan_of(probe_sql(Article, ("id",), "connector_id", "external_id"), [ids, mine.pk])
    slugs = plan_of(
        probe_sql(Article, ("id",), "organisation_id", "slug"),
        [[f"1-{i}" for i in ids], org_a.pk],
    )
    with connection.cursor() as cursor:  # as ArchiveWalk.unseen plans it
        cursor.execute(ARCHIVE_WALK_PLANNING)
    archive_walk = plan_of(*archive_walk_sql(Article, mine.pk, "1000", 1000))

    assert "Index Scan using article_unique_external_id" in existing, existing
    assert "Index Scan using article_unique_slug_per_org" in slugs, slugs
    for plan in (existing, slugs):
        assert re.search(r"Index Cond: .*= k\.v\)", plan), plan  # each value its own probe
        assert "_organisation_id_" not in plan and "Seq Scan" not in plan, plan
    # The archive walk reads 1,000 records a batch in index order and stops there: not a
    # bitmap scan and a sort of every remaining record per batch (quadratic), nor a table scan.
    assert "Index Scan using article_unique_external_id" in archive_walk, archive_walk
    for kind in ("Seq Scan", "Bitmap", "Sort"):
        assert kind not in archive_walk, archive_walk


@pytest.mark.parametrize("analysed", [False, True], ids=["never analysed", "analysed"])
def test_this_jobs_log_is_probed_per_record_whatever_the_statistics(org_a, analysed):
    # The archive walk and the "logged in this job already?" check ask the job's log about a
    # batch of records. Planned as a join, that read every log row of the job per batch (30
    # ms a batch at 100,000 rows): each record must stay one probe of (job, external_id).
    from syncjobs.models import SyncLogEntry

    mine = make_connector(org_a, name="This site")
    job = SyncJob.objects.create(connector=mine, kind="FULL")
    SyncLogEntry.objects.bulk_create(
        SyncLogEntry(
            job=job,
            connector=mine,
            entity_type=entity_type,
            external_id=str(i),
            operation="CREATE",
            status="SUCCESS",
        )
        for entity_type in ("article", "member")
        for i in range(3000)
    )
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE syncjobs_synclogentry")
    ids = [str(i) for i in range(0, 3000, 3)]

    logged = plan_of(LOGGED_SQL, [ids, job.pk, "article"])
    replaced = plan_of(REPLACED_LOGS_SQL, [["article"] * len(ids), ids, job.pk])

    for plan in (logged, replaced):
        # One probe per record: the index condition holds the record's own key (a plain or
        # a bitmap index scan inside the nested loop), never a join over the job's rows.
        assert "log_job_external_idx" in plan, plan
        assert re.search(r"Index Cond: .*\(external_id\)::text = k\.v\)", plan), plan
        for kind in ("Seq Scan on syncjobs_synclogentry", "Hash Join", "Merge Join"):
            assert kind not in plan, plan


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
