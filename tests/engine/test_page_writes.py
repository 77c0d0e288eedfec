"""How the store writes a page on PostgreSQL: one JSON document per statement
(DjangoStore.commit_page), row by row when the database refuses a row.

These tests run with real transactions (transaction=True), as a worker does: the engine
tests with the `db` fixture run inside a test transaction.
"""

import threading

import pytest
from django.utils import timezone

from connectors.wordpress.pages import Page
from records.mapping import content_hash, map_record
from records.models import Article
from syncjobs.engine.core import JobCancelled, SyncEngine
from syncjobs.engine.store import DjangoStore
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import build_plan
from tests.conftest import make_connector


class Pages:
    """A source serving the given pages of articles, then calling `after(page_number)`."""

    def __init__(self, *pages, after=None):
        self.pages = pages
        self.after = after or (lambda number: None)

    def iter_pages(self, entity_type, **options):
        total = sum(len(page) for page in self.pages)
        for number, items in enumerate(self.pages, 1):
            yield Page(items, number, 100, total, len(self.pages), request_count=1)
            self.after(number)

    def iter_deletions(self, since):
        yield Page([], 1, 100, 0, 0, request_count=1)


def article(record_id, **fields):
    record = {
        "id": record_id,
        "modified_gmt": "2024-03-01T10:00:00",
        "date_gmt": "2024-03-01T09:00:00",
        "status": "publish",
        "slug": f"post-{record_id}",
        "title": f"Post {record_id}",
        "excerpt": "",
        "content": "<p>Body</p>",
        "categories": [],
        "tags": [],
    }
    record.update(fields)
    return record


def pages_of_articles(count):
    """`count` pages of 100 new articles each."""
    return [[article(page * 100 + i) for i in range(1, 101)] for page in range(count)]


@pytest.fixture(autouse=True)
def full_pages(settings):
    # A page as long as the page size is one a next page is likely to follow: the engine
    # stores it behind, in the writer thread (at 100 records a page in production).
    settings.SYNC_PAGE_SIZE = 1


def run_on(connector, source):
    """A full sync of `connector` from `source`, the way the runner drives the engine."""
    job = SyncJob.objects.create(connector=connector, kind="FULL", status="RUNNING")
    store = DjangoStore(job, connector)
    engine = SyncEngine(source, store, build_plan(job, connector))
    try:
        engine.run()
    finally:
        store.close()
    job.refresh_from_db()
    return job, engine


def run(org, *pages, after=None):
    connector = make_connector(
        org, name=f"pages {SyncJob.objects.count()}", entity_types=["article"]
    )
    return run_on(connector, Pages(*pages, after=after))


def log_rows(job):
    return {
        row.external_id: (row.operation, row.status, row.error)
        for row in SyncLogEntry.objects.filter(job=job).order_by("id")  # the latest wins
    }


HOSTILE_TEXT = [
    "Quotes ' \" and a back\\slash",
    "Lines\nand\ttabs\r\nand a form\x0cfeed",
    "Ünïcödé, 中文, emoji 😀, RTL \u202e and separators \u2028\u2029",
    'JSON-looking {"a": [1, 2]} and SQL-looking \'); DROP TABLE records_article; --',
    'Escapes that must stay text: \\u0000 \\n \\"',
]


@pytest.mark.django_db(transaction=True)
def test_every_character_arrives_as_mapped_and_hashed(org_a):
    items = [
        article(
            n + 1,
            title=text,
            excerpt=f"<p>{text}</p>",
            content=f"<pre>{text}</pre>",
            categories=[text, "plain"],
            slug=f"slug-{n}-%e2%9c%93",
        )
        for n, text in enumerate(HOSTILE_TEXT)
    ]
    job, _ = run(org_a, items)

    assert job.stats["article"]["created"] == len(items), log_rows(job)
    for item in items:
        mapped = map_record("article", item)
        stored = Article.objects.get(external_id=str(item["id"]))
        for name, value in mapped.values.items():
            assert getattr(stored, name) == value, name
        # What was hashed is what was stored: a re-sync of it is a SKIP.
        assert stored.content_hash == content_hash(mapped.values)
        assert stored.source_modified_at == mapped.modified_gmt
        assert stored.last_synced_at and stored.created_at


@pytest.mark.django_db(transaction=True)
def test_a_nul_character_fails_its_record_alone(org_a):
    # PostgreSQL text cannot hold NUL: the page is refused as a whole, then saved row by row,
    # and only the record that carries one fails, saying why.
    job, _ = run(
        org_a,
        [article(1), article(2, title="Before\x00after"), article(3)],
    )

    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["1", "3"]
    logged = log_rows(job)
    assert logged["1"] == logged["3"] == ("CREATE", "SUCCESS", "")
    assert logged["2"] == (
        "CREATE",
        "FAILED",
        "article 2: the database refused it: PostgreSQL text fields cannot contain NUL (0x00) "
        "bytes",
    )
    assert (job.stats["article"]["created"], job.stats["article"]["failed"]) == (2, 1)


@pytest.mark.django_db(transaction=True)
def test_a_lone_surrogate_fails_its_record_alone(org_a):
    # JSON allows "\ud800" on its own; it is not Unicode text (nh3, the hash and PostgreSQL
    # refuse it) and used to fail the whole job from the hashing.
    job, _ = run(
        org_a,
        [article(1), article(2, title="Half \ud83d an emoji"), article(3, tags=["ok", "\udfff"])],
        [article(4, content="<p>\ud800</p>")],
    )

    assert job.status == "RUNNING"  # the runner, not the engine, ends the job
    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["1"]
    logged = log_rows(job)
    assert logged["1"] == ("CREATE", "SUCCESS", "")
    assert logged["2"][1] == logged["3"][1] == logged["4"][1] == "FAILED"
    assert logged["2"][2] == (
        "article 2: field 'title': character 6 is \\ud83d, a lone UTF-16 surrogate: "
        "not valid Unicode text"
    )
    assert "field 'tags': character 1 is \\udfff" in logged["3"][2]
    assert "field 'content': character 4 is \\ud800" in logged["4"][2]
    assert (job.stats["article"]["created"], job.stats["article"]["failed"]) == (1, 3)


@pytest.mark.django_db(transaction=True)
def test_a_page_that_fails_stores_nothing_of_itself(org_a, monkeypatch):
    # The statement of page 2 fails after its upsert and log inserts ran (in the final
    # UPDATE): being one statement, none of its rows stay. Page 1 stays complete.
    page_statement = DjangoStore._page_statement

    def failing_second_page(self, page, now):
        statement = page_statement(self, page, now)
        if page.writes and page.writes[0].mapped.external_id == "3":
            # Fails only once the upsert has returned its rows.
            statement.sql = statement.sql.replace(
                " RETURNING cancel_requested_at",
                " AND CASE WHEN (SELECT count(*) FROM up) > 0 THEN "
                "current_setting('sync.no_such_setting') = 'x' END"
                " RETURNING cancel_requested_at",
            )
        return statement

    monkeypatch.setattr(DjangoStore, "_page_statement", failing_second_page)
    with pytest.raises(Exception, match="no_such_setting"):
        run(org_a, [article(1), article(2)], [article(3), article(4)])

    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["1", "2"]
    assert sorted(SyncLogEntry.objects.values_list("external_id", flat=True)) == ["1", "2"]


def hold_the_first_page_until_the_next_pages_reads(monkeypatch):
    """Holds the first page the writer thread stores until the engine's thread has read the
    next page's records (or 5 s have passed): those reads cannot see that page. Returns
    [whether a read released it] once it has been stored."""
    read, released = threading.Event(), []
    commit_page, existing = DjangoStore.commit_page, DjangoStore.existing
    run_statement = DjangoStore._run_statement

    def submitted(self, page):
        read.clear()
        return commit_page(self, page)

    def reading(self, entity_type, ids):
        found = existing(self, entity_type, ids)
        read.set()
        return found

    def held(self, entity_type, statement):
        if threading.current_thread().name.startswith("sync-writer") and not released:
            released.append(read.wait(timeout=5))
        return run_statement(self, entity_type, statement)

    monkeypatch.setattr(DjangoStore, "commit_page", submitted)
    monkeypatch.setattr(DjangoStore, "existing", reading)
    monkeypatch.setattr(DjangoStore, "_run_statement", held)
    return released


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("overlapping", [True, False])
def test_the_next_page_sees_what_the_page_before_wrote(org_a, monkeypatch, overlapping):
    # Record 1 comes again on page 2 (edited meanwhile: it moved to the end of the listing),
    # and record 3 wants the slug record 2 took on page 1: both decisions need page 1. Page
    # 2's reads run while page 1 is being stored (held here until they have run, so they
    # cannot see it); what page 1 wrote is read again once it is stored.
    released = hold_the_first_page_until_the_next_pages_reads(monkeypatch) if overlapping else []
    job, _ = run(
        org_a,
        [article(1), article(2, slug="taken")],
        [article(1, title="Edited", modified_gmt="2024-03-01T11:00:00"), article(3, slug="taken")],
    )

    # Record 1 was created once (page 2 found it), and stored with its latest version.
    assert job.stats["article"]["created"] == 2, job.stats
    assert Article.objects.get(external_id="1").title == "Edited"
    assert Article.objects.count() == 2
    # The engine's own check caught the slug (naming the holder), not the database.
    status, error = log_rows(job)["3"][1:]
    assert status == "FAILED"
    assert error.startswith("article 3: duplicate slug 'taken': the article 'Post 2'"), error
    assert released == ([True] if overlapping else []), released


@pytest.mark.django_db(transaction=True)
def test_pages_after_the_connector_is_gone_store_no_record(org_a, settings):
    # The records' foreign keys are not database constraints: the page statement itself
    # writes no record once its connector row is gone (deleted from the Django admin with
    # its organisation, say); the records stored before it lose their connector, as Django
    # sets it.
    from connectors.models import Connector

    settings.SYNC_WRITE_BEHIND = False  # page 1 is stored before page 2 is asked for
    settings.SYNC_PREFETCH = False
    connector = make_connector(org_a, name="going", entity_types=["article"])

    def delete_connector(number):
        if number == 1:
            Connector.objects.filter(pk=connector.pk).delete()

    job = SyncJob.objects.create(connector=connector, kind="FULL", status="RUNNING")
    store = DjangoStore(job, connector)
    source = Pages([article(1)], [article(2)], after=delete_connector)
    try:
        SyncEngine(source, store, build_plan(job, connector)).run()
    finally:
        store.close()

    assert list(Article.objects.values_list("external_id", "connector_id")) == [("1", None)]


@pytest.mark.django_db(transaction=True)
def test_a_skip_is_not_logged_twice(org_a):
    # Record 1 is unchanged (SKIP) on page 1, then comes again on page 2 with a newer
    # modified time and the same content: the job's one log row for it is page 1's SKIP.
    first, _ = run(org_a, [article(1), article(2)])
    SyncJob.objects.filter(pk=first.pk).update(status="COMPLETED")
    pages = Pages([article(1), article(2)], [article(1, modified_gmt="2024-03-01T11:00:00")])
    job, engine = run_on(first.connector, pages)

    rows = list(SyncLogEntry.objects.filter(job=job).values_list("external_id", "operation"))
    assert sorted(rows) == [("1", "SKIP"), ("2", "SKIP")]
    assert engine.stats["article"]["skipped"] == 2


# Record 1 comes again on page 2, edited in WordPress while the job listed it: its new
# version replaces the log row page 1 wrote for it.
EDITED_AGAIN = (
    [article(1), article(2)],
    [article(1, title="Edited", modified_gmt="2024-03-01T11:00:00"), article(3)],
)


@pytest.mark.django_db(transaction=True)
def test_a_replacement_that_fails_keeps_the_row_it_replaces(org_a, monkeypatch):
    # The engine decided that record 1's new version replaces its row, then page 2's
    # statement fails after its upsert ran: the earlier row is still the record's one log
    # row of the job (it used to be deleted on its own, before the page was stored).
    page_statement = DjangoStore._page_statement

    def failing_replacement(self, page, now):
        statement = page_statement(self, page, now)
        if any(line.replaces for line in page.logs):
            statement.sql = statement.sql.replace(
                " RETURNING cancel_requested_at",
                " AND CASE WHEN (SELECT count(*) FROM up) > 0 THEN "
                "current_setting('sync.no_such_setting') = 'x' END"
                " RETURNING cancel_requested_at",
            )
        return statement

    monkeypatch.setattr(DjangoStore, "_page_statement", failing_replacement)
    with pytest.raises(Exception, match="no_such_setting"):
        run(org_a, *EDITED_AGAIN)

    job = SyncJob.objects.get()
    assert log_rows(job) == {"1": ("CREATE", "SUCCESS", ""), "2": ("CREATE", "SUCCESS", "")}
    assert sorted(Article.objects.values_list("external_id", "title")) == [
        ("1", "Post 1"),
        ("2", "Post 2"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_replacement_saved_row_by_row_replaces_in_its_transaction(org_a, org_b, monkeypatch):
    # Record 3's NUL makes the database refuse page 2: it is saved row by row, and the
    # replaced row goes in that transaction, before the page's own rows.
    pages = (EDITED_AGAIN[0], [EDITED_AGAIN[1][0], article(3, title="Before\x00after")])
    job, engine = run(org_a, *pages)

    assert list(SyncLogEntry.objects.filter(job=job, external_id="1").values_list("operation")) == [
        ("CREATE",)
    ]
    assert log_rows(job)["3"][:2] == ("CREATE", "FAILED")
    assert Article.objects.get(external_id="1").title == "Edited"
    counters = job.stats["article"]
    assert (counters["processed"], counters["created"], counters["failed"]) == (3, 2, 1)
    assert engine.stats["article"] == counters

    # The same page, failing inside that transaction once the replaced row was deleted:
    # nothing of it stays, the earlier row included.
    insert_logs = DjangoStore._insert_logs

    def failing_insert(self, logs, now):
        if any(line.replaces for line in logs):
            raise RuntimeError("the log insert broke")
        return insert_logs(self, logs, now)

    monkeypatch.setattr(DjangoStore, "_insert_logs", failing_insert)
    with pytest.raises(RuntimeError, match="log insert broke"):
        run(org_b, *pages)  # another organisation: free slugs

    failed = SyncJob.objects.latest("pk")
    assert log_rows(failed) == {"1": ("CREATE", "SUCCESS", ""), "2": ("CREATE", "SUCCESS", "")}


@pytest.mark.django_db(transaction=True)
def test_a_cancel_seen_by_a_page_stops_the_next_one(org_a, monkeypatch):
    # The admin cancels just before page 1's statement runs: that page is stored and its
    # statement sees the request; page 2 is not.
    run_statement = DjangoStore._run_statement

    def cancel_then_write(self, entity_type, statement):
        if '"external_id":"1"' in str(statement.params):
            SyncJob.objects.update(cancel_requested_at=timezone.now())
        return run_statement(self, entity_type, statement)

    monkeypatch.setattr(DjangoStore, "_run_statement", cancel_then_write)
    with pytest.raises(JobCancelled):
        run(org_a, [article(1)], [article(2)], [article(3)])

    assert list(Article.objects.values_list("external_id", flat=True)) == ["1"]
    assert list(SyncLogEntry.objects.values_list("external_id", flat=True)) == ["1"]


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_a_page_keeps_that_page(org_a):
    # The site fails right after serving page 1: the job stops with the site's error, and
    # page 1 is stored whole, as a page committed before a failure always was.
    def site_goes_down(number):
        raise RuntimeError("the site stopped answering")

    with pytest.raises(RuntimeError, match="stopped answering"):
        run(org_a, [article(1), article(2)], [article(3)], after=site_goes_down)

    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["1", "2"]
    assert sorted(SyncLogEntry.objects.values_list("external_id", flat=True)) == ["1", "2"]


@pytest.mark.django_db(transaction=True)
def test_two_connectors_importing_the_same_slug_at_once_store_it_once(org_a):
    # Both phases start while the organisation has no article: their pages race for slug
    # "shared", page against page. Whoever comes second fails that record alone, in words:
    # the engine's check names the holder, or the database's unique index settles it.

    from django.db import connections

    barrier = threading.Barrier(2, timeout=30)
    outcome = {}

    class Together(Pages):
        def iter_pages(self, entity_type, **options):
            barrier.wait()  # both phases found the organisation empty before either writes
            yield from super().iter_pages(entity_type, **options)

    def import_(name, first_id):
        try:
            pages = (
                [article(first_id, slug="shared"), article(first_id + 1, slug=f"own-{name}")],
                [article(first_id + 2, slug=f"more-{name}")],
            )
            connector = make_connector(org_a, name=name, entity_types=["article"])
            source = Together(*pages, after=lambda number: barrier.wait())
            outcome[name], _ = run_on(connector, source)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=import_, args=(name, first))
        for name, first in (("one", 1), ("two", 101))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert set(outcome) == {"one", "two"}
    assert Article.objects.filter(slug="shared").count() == 1
    assert Article.objects.count() == 5  # 6 served, the slug's loser refused
    failed = SyncLogEntry.objects.filter(status="FAILED")
    assert failed.count() == 1
    error = failed.get().error
    assert "took it while this one was being saved" in error or "already uses it" in error, error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("behind", [True, False])
def test_list_pages_are_stored_by_the_writer_thread_on_a_connection_it_closes(
    org_a, monkeypatch, settings, behind
):
    # With SYNC_WRITE_BEHIND, a full list page's statement runs in the writer thread while
    # the engine maps the next page; the phase's other commits (and its last page, shorter)
    # stay in the engine's thread, and the thread's own connection is closed with the store
    # (a worker runs many jobs).
    from django.db import connection

    settings.SYNC_WRITE_BEHIND = behind
    settings.SYNC_PAGE_SIZE = 2
    run_statement = DjangoStore._run_statement
    threads = []

    used = []

    def noting_thread(self, entity_type, statement):
        threads.append((threading.current_thread().name, "up AS" in statement.sql))
        result = run_statement(self, entity_type, statement)
        used.append(connection.connection)  # this thread's
        return result

    monkeypatch.setattr(DjangoStore, "_run_statement", noting_thread)
    job, _ = run(org_a, [article(1), article(2)], [article(3)])

    assert job.stats["article"]["created"] == 3
    pages = [name for name, with_records in threads if with_records]
    assert len(pages) == 2
    assert pages[0].startswith("sync-writer") == behind, threads
    others = [name for name, with_records in threads if not with_records] + pages[1:]
    assert all(name == "MainThread" for name in others), threads
    writers = {id(conn): conn for conn in used if conn is not connection.connection}
    assert len(writers) == (1 if behind else 0)
    assert all(conn.closed for conn in writers.values())


@pytest.mark.django_db(transaction=True)
def test_a_bulk_load_has_its_tables_analysed(org_a):
    # A cold import into tables whose statistics count nothing (analysed empty): the store
    # analyses a table once the job has added as many rows as its statistics count, so the
    # planner keeps probing indexes instead of scanning a table it believes empty.
    from django.db import connection

    tables = ["records_article", "syncjobs_synclogentry"]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}")
    run(org_a, *pages_of_articles(12))

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [tables])
        counted = dict(cursor.fetchall())
    assert counted["records_article"] >= 1000, counted
    assert counted["syncjobs_synclogentry"] >= 1000, counted


@pytest.mark.django_db(transaction=True)
def test_a_sync_switches_threads_often_and_leaves_the_interval_as_it_was(org_a, settings):
    # The prefetch and writer threads wait for the GIL behind the mapping: during a run the
    # interpreter switches every SYNC_SWITCH_INTERVAL_MS, and the worker process gets its
    # own interval back afterwards.
    import sys

    from syncjobs.runner import run_job

    settings.SYNC_SWITCH_INTERVAL_MS = 0.5
    seen = []
    source = Pages([article(1)], after=lambda number: seen.append(sys.getswitchinterval()))
    connector = make_connector(org_a, name="switching", entity_types=["article"])
    before = sys.getswitchinterval()
    job = run_job(SyncJob.objects.create(connector=connector, kind="FULL").pk, source=source)

    assert job.status == "COMPLETED", job.error
    assert seen == [0.0005]
    assert sys.getswitchinterval() == before


@pytest.mark.django_db(transaction=True)
def test_a_table_that_cannot_be_analysed_leaves_the_sync_going(org_a, caplog):
    # A VACUUM holds the table (one against wraparound does not give way to an ANALYZE):
    # the store does not wait for it, says so in the worker's log, and the sync completes.
    import psycopg
    from django.db import connection

    # Statistics of the empty table: 1,100 rows are then enough to want an ANALYZE, whatever
    # an earlier test of this worker left in pg_class (ANALYZE's counts outlive a rollback).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE records_article")
    params = connection.get_connection_params()
    wanted = ("dbname", "host", "port", "user", "password")
    with psycopg.connect(**{key: params[key] for key in wanted if params.get(key)}) as vacuum:
        vacuum.execute("LOCK TABLE records_article IN SHARE UPDATE EXCLUSIVE MODE")
        job, _ = run(org_a, *pages_of_articles(11))
        vacuum.rollback()

    assert job.stats["article"]["created"] == 1100, job.stats
    assert "could not analyse records_article" in caplog.text
