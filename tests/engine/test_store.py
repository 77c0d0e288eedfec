"""The store's lookups on PostgreSQL: they must stay index probes whatever the statistics say."""

import pytest
from django.db import connection

from records.models import Article
from syncjobs.engine.store import DjangoStore
from syncjobs.models import SyncJob
from tests.conftest import make_connector


def plan_of(sql, params):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("analysed", [False, True], ids=["never analysed", "knows other rows"])
def test_lookups_stay_index_probes_whatever_the_statistics(org_a, analysed):
    # What a cold import sees: a table the planner has no statistics for, or statistics that
    # only know another connector's rows, while this connector's rows grow. The per-page
    # lookups must probe the composite unique indexes, never read the connector's rows
    # through the single-column foreign key index (that made a 100,000-record import
    # quadratic).
    other = make_connector(org_a, name="Other site")
    mine = make_connector(org_a, name="This site")
    articles = lambda connector, n: [  # noqa: E731
        Article(organisation=org_a, connector=connector, external_id=str(i), slug=f"{n}-{i}")
        for i in range(3000)
    ]
    Article.objects.bulk_create(articles(other, 0))
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE records_article")
    Article.objects.bulk_create(articles(mine, 1))
    job = SyncJob.objects.create(connector=mine, kind="FULL")
    ids = [str(i) for i in range(0, 3000, 30)]

    existing = plan_of(
        DjangoStore.probe_sql(Article, ["id"], "connector_id", "external_id"), [ids, mine.pk]
    )
    slugs = plan_of(
        DjangoStore.probe_sql(Article, ["id"], "organisation_id", "slug"),
        [[f"1-{i}" for i in ids], org_a.pk],
    )
    archive_walk = plan_of(*DjangoStore(job, mine).archive_walk_sql(Article, "", 1000))

    assert "Index Scan using article_unique_external_id" in existing, existing
    assert "Index Scan using article_unique_slug_per_org" in slugs, slugs
    for plan in (existing, slugs):
        assert "_connector_id_" not in plan and "_organisation_id_" not in plan, plan
        assert "Seq Scan" not in plan, plan
    # The archive walk reads 1,000 records a batch: at worst (stale statistics) it sorts the
    # connector's live rows per batch, but never scans the whole table.
    assert "Seq Scan" not in archive_walk, archive_walk
