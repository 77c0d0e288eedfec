"""How the store writes a page: one JSON document per statement, written behind the engine
by a thread of its own (DjangoStore.commit_page), on PostgreSQL.

Write-behind needs the page's connection to see committed data, so these tests that use it
run with real transactions (transaction=True); the engine tests with the `db` fixture run
inside a test transaction, where the store writes on the test's own connection instead.
"""

import threading
from types import SimpleNamespace

import pytest
from django.utils import timezone

from records.models import Article
from syncjobs.engine.core import JobCancelled, SyncEngine
from syncjobs.engine.mapping import content_hash, map_record
from syncjobs.engine.store import DjangoStore
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import build_plan
from tests.conftest import make_connector

both_paths = pytest.mark.parametrize("write_behind", [True, False], ids=["behind", "inline"])


class Pages:
    """A source serving the given pages of articles, then calling `after(page_number)`."""

    def __init__(self, *pages, after=None):
        self.pages = pages
        self.after = after or (lambda number: None)

    def iter_pages(self, entity_type, **options):
        total = sum(len(page) for page in self.pages)
        for number, items in enumerate(self.pages, 1):
            yield SimpleNamespace(items=items, total=total, skipped=[])
            self.after(number)

    def iter_deletions(self, since):
        yield SimpleNamespace(items=[], total=0, skipped=[])


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


def run_on(connector, source, *, write_behind=True):
    """A full sync of `connector` from `source`, the way the runner drives the engine."""
    job = SyncJob.objects.create(connector=connector, kind="FULL", status="RUNNING")
    store = DjangoStore(job, connector, write_behind=write_behind)
    engine = SyncEngine(source, store, build_plan(job, connector))
    try:
        engine.run()
        store.flush()
    finally:
        store.close()
    job.refresh_from_db()
    return job, engine


def run(org, *pages, write_behind=True, after=None):
    connector = make_connector(
        org, name=f"pages {SyncJob.objects.count()}", entity_types=["article"]
    )
    return run_on(connector, Pages(*pages, after=after), write_behind=write_behind)


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
@both_paths
def test_every_character_arrives_as_mapped_and_hashed(org_a, write_behind):
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
    job, _ = run(org_a, items, write_behind=write_behind)

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
@both_paths
def test_a_nul_character_fails_its_record_alone(org_a, write_behind):
    # PostgreSQL text cannot hold NUL: the page is refused as a whole, then saved row by row,
    # and only the record that carries one fails, saying why.
    job, _ = run(
        org_a,
        [article(1), article(2, title="Before\x00after"), article(3)],
        write_behind=write_behind,
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
@both_paths
def test_a_lone_surrogate_fails_its_record_alone(org_a, write_behind):
    # JSON allows "\ud800" on its own; it is not Unicode text (nh3, the hash and PostgreSQL
    # refuse it) and used to fail the whole job from the hashing.
    job, _ = run(
        org_a,
        [article(1), article(2, title="Half \ud83d an emoji"), article(3, tags=["ok", "\udfff"])],
        [article(4, content="<p>\ud800</p>")],
        write_behind=write_behind,
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
@both_paths
def test_a_page_that_fails_stores_nothing_of_itself(org_a, monkeypatch, write_behind):
    # The statement of page 2 fails after its upsert and log inserts ran (in the final
    # UPDATE): being one statement, none of its rows stay. Page 1 stays complete.
    page_statement = DjangoStore._page_statement

    def failing_second_page(self, entity_type, writes, logs, *args):
        statement = page_statement(self, entity_type, writes, logs, *args)
        if writes and writes[0].mapped.external_id == "3":
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
        run(org_a, [article(1), article(2)], [article(3), article(4)], write_behind=write_behind)

    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["1", "2"]
    assert sorted(SyncLogEntry.objects.values_list("external_id", flat=True)) == ["1", "2"]


@pytest.mark.django_db(transaction=True)
def test_the_next_page_sees_the_page_still_being_written(org_a):
    # Record 1 comes again on page 2 (edited meanwhile: it moved to the end of the listing),
    # and record 3 wants the slug record 2 took on page 1: both decisions need page 1, which
    # is still in the writer thread when page 2 is decided.
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


@pytest.mark.django_db(transaction=True)
def test_a_skip_still_being_written_is_not_logged_twice(org_a, monkeypatch):
    # Record 1 is unchanged (SKIP) on page 1, then comes again on page 2 with a newer
    # modified time and the same content: the job's one log row for it is the SKIP that
    # page 1 wrote, even while that row is still in the writer thread.
    first, _ = run(org_a, [article(1), article(2)])
    SyncJob.objects.filter(pk=first.pk).update(status="COMPLETED")
    existing, write_page = DjangoStore.existing, DjangoStore._write_page
    page_two_decided = threading.Event()
    decisions, statements = [], []

    def existing_then_release(self, entity_type, external_ids):
        # A page's decision starts with this read: page 2's releases page 1's statement.
        decisions.append(external_ids)
        if len(decisions) == 2:
            page_two_decided.set()
        return existing(self, entity_type, external_ids)

    def held_write(self, entity_type, statement):
        # The writer thread runs the statements in order: the phase's opening commit, then
        # page 1's, which waits until page 2 is being decided, so page 2 is surely decided
        # while page 1 is still in flight.
        statements.append(statement)
        if len(statements) == 2:
            assert page_two_decided.wait(timeout=30), "page 2 was never decided"
        return write_page(self, entity_type, statement)

    monkeypatch.setattr(DjangoStore, "existing", existing_then_release)
    monkeypatch.setattr(DjangoStore, "_write_page", held_write)
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
@both_paths
def test_a_replacement_that_fails_keeps_the_row_it_replaces(org_a, monkeypatch, write_behind):
    # The engine decided that record 1's new version replaces its row, then page 2's
    # statement fails after its upsert ran: the earlier row is still the record's one log
    # row of the job (it used to be deleted on its own, before the page was stored).
    page_statement = DjangoStore._page_statement

    def failing_replacement(self, entity_type, writes, logs, *args):
        statement = page_statement(self, entity_type, writes, logs, *args)
        if any(line.replaces for line in logs):
            statement.sql = statement.sql.replace(
                " RETURNING cancel_requested_at",
                " AND CASE WHEN (SELECT count(*) FROM up) > 0 THEN "
                "current_setting('sync.no_such_setting') = 'x' END"
                " RETURNING cancel_requested_at",
            )
        return statement

    monkeypatch.setattr(DjangoStore, "_page_statement", failing_replacement)
    with pytest.raises(Exception, match="no_such_setting"):
        run(org_a, *EDITED_AGAIN, write_behind=write_behind)

    job = SyncJob.objects.get()
    assert log_rows(job) == {"1": ("CREATE", "SUCCESS", ""), "2": ("CREATE", "SUCCESS", "")}
    assert sorted(Article.objects.values_list("external_id", "title")) == [
        ("1", "Post 1"),
        ("2", "Post 2"),
    ]


@pytest.mark.django_db(transaction=True)
@both_paths
def test_a_replacement_saved_row_by_row_replaces_in_its_transaction(
    org_a, org_b, monkeypatch, write_behind
):
    # Record 3's NUL makes the database refuse page 2: it is saved row by row, and the
    # replaced row goes in that transaction, before the page's own rows.
    pages = (EDITED_AGAIN[0], [EDITED_AGAIN[1][0], article(3, title="Before\x00after")])
    job, engine = run(org_a, *pages, write_behind=write_behind)

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
    copy_logs = DjangoStore._copy_logs

    def failing_copy(self, cursor, logs, now):
        if any(line.replaces for line in logs):
            raise RuntimeError("the log COPY broke")
        return copy_logs(self, cursor, logs, now)

    monkeypatch.setattr(DjangoStore, "_copy_logs", failing_copy)
    with pytest.raises(RuntimeError, match="log COPY broke"):
        run(org_b, *pages, write_behind=write_behind)  # another organisation: free slugs

    failed = SyncJob.objects.latest("pk")
    assert log_rows(failed) == {"1": ("CREATE", "SUCCESS", ""), "2": ("CREATE", "SUCCESS", "")}


@pytest.mark.django_db(transaction=True)
def test_a_cancel_seen_by_the_page_in_flight_stops_the_next_one(org_a, monkeypatch):
    # The admin cancels just before page 1's statement runs in the writer thread: that page
    # is stored and its statement sees the request; page 2, decided meanwhile, is not.
    write_page = DjangoStore._write_page

    def cancel_then_write(self, entity_type, statement):
        if '"external_id":"1"' in str(statement.params):
            SyncJob.objects.update(cancel_requested_at=timezone.now())
        return write_page(self, entity_type, statement)

    monkeypatch.setattr(DjangoStore, "_write_page", cancel_then_write)
    with pytest.raises(JobCancelled):
        run(org_a, [article(1)], [article(2)], [article(3)])

    assert list(Article.objects.values_list("external_id", flat=True)) == ["1"]
    assert list(SyncLogEntry.objects.values_list("external_id", flat=True)) == ["1"]


@pytest.mark.django_db(transaction=True)
def test_writing_behind_stores_exactly_what_writing_inline_does(org_a, org_b, settings):
    from syncjobs import services
    from syncjobs.runner import run_job
    from wpsim import SimulatedSite, serve

    from .conftest import SIM_KEY

    site = SimulatedSite(records=400, seed=5, key=SIM_KEY)
    outcome = {}
    with serve(site, host="127.0.0.1", port=0) as server:
        for write_behind, org in ((True, org_a), (False, org_b)):
            settings.SYNC_WRITE_BEHIND = write_behind
            connector = make_connector(
                org,
                name=f"behind {write_behind}",
                site_url=server.url,
                api_key=SIM_KEY,
                entity_types=sorted(site.entity_types),
            )
            job = run_job(services.start_sync(connector, "FULL").pk)
            assert job.status == "COMPLETED", job.error
            outcome[write_behind] = (
                job.stats,
                {
                    (r.entity_type, r.external_id): (r.operation, r.status, r.error)
                    for r in SyncLogEntry.objects.filter(job=job)
                },
            )
            # The next sync sees every record as stored: all skipped.
            again = run_job(services.start_sync(connector, "FULL").pk)
            totals = again.totals()
            assert totals["skipped"] == totals["processed"] - totals["failed"], totals
    assert outcome[True] == outcome[False]


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_a_page_is_written_keeps_that_page(org_a):
    # The site fails right after serving page 1, while page 1 is still in the writer thread:
    # the job stops with the site's error, and page 1 is stored whole, as a page committed
    # before a failure always was.
    def site_goes_down(number):
        raise RuntimeError("the site stopped answering")

    with pytest.raises(RuntimeError, match="stopped answering"):
        run(org_a, [article(1), article(2)], [article(3)], after=site_goes_down)

    assert sorted(Article.objects.values_list("external_id", flat=True)) == ["1", "2"]
    assert sorted(SyncLogEntry.objects.values_list("external_id", flat=True)) == ["1", "2"]


def lookups(monkeypatch, method: str) -> list:
    """The keys each call of the store's lookup `method` asks for, sorted, in call order."""
    asked = []
    lookup = getattr(DjangoStore, method)

    def spy(self, entity_type, keys):
        asked.append(sorted(keys))
        return lookup(self, entity_type, keys)

    monkeypatch.setattr(DjangoStore, method, spy)
    return asked


@pytest.mark.django_db(transaction=True)
@both_paths
def test_a_phase_that_starts_empty_looks_up_only_what_it_wrote(org_a, monkeypatch, write_behind):
    # No article of this connector is stored when the phase starts: a record the phase has
    # not created cannot exist, so its page does not look it up. Record 1 comes again two
    # pages later (edited while the job listed it, long after its page was written): that
    # one is looked up, found, and updated, not created twice.
    looked_up = lookups(monkeypatch, "existing")
    job, _ = run(
        org_a,
        [article(1), article(2)],
        [article(3), article(4)],
        [article(1, title="Edited", modified_gmt="2024-03-01T11:00:00"), article(5)],
        write_behind=write_behind,
    )

    assert looked_up == [["1"]]
    assert job.stats["article"]["created"] == 5, job.stats
    assert Article.objects.count() == 5
    assert Article.objects.get(external_id="1").title == "Edited"
    assert SyncLogEntry.objects.filter(job=job, external_id="1").count() == 1

    # The next run starts with the five stored: every page is looked up again.
    looked_up.clear()
    SyncJob.objects.filter(pk=job.pk).update(status="COMPLETED")
    _, engine = run_on(job.connector, Pages([article(1), article(6)]), write_behind=write_behind)
    assert looked_up == [["1", "6"]]
    assert engine.stats["article"]["created"] == 1


def test_written_ids_stay_bounded_and_doubt_what_they_cannot_hold():
    from syncjobs.engine.core import WrittenIds

    written = WrittenIds()
    for external_id in ("7", "1000000", str(WrittenIds.CAP - 1)):
        assert not written.may_exist(external_id)
        written.add(external_id)
        assert written.may_exist(external_id)
    assert not written.may_exist("8") and not written.may_exist("999999")
    # Beyond the bitmap, or not a plain number: possibly written, so looked up.
    for external_id in (str(WrittenIds.CAP), "99999999999", "12a", "", "-3", "٣", "007"):
        written.add(external_id)
        assert written.may_exist(external_id)
    assert len(written._bits) <= WrittenIds.CAP // 8


@pytest.mark.django_db(transaction=True)
@both_paths
def test_an_organisation_without_records_looks_up_only_slugs_it_gave(
    org_a, monkeypatch, write_behind
):
    # The organisation has no article yet: a slug this phase has not given cannot be taken,
    # so only slugs it gave are looked up, and a duplicate across pages is still caught by
    # the engine, naming the holder.
    looked_up = lookups(monkeypatch, "slug_holders")
    job, _ = run(
        org_a,
        [article(1, slug="a"), article(2, slug="b")],
        [article(3, slug="a"), article(4, slug="c")],
        write_behind=write_behind,
    )

    assert looked_up == [["a"]]
    status, error = log_rows(job)["3"][1:]
    assert status == "FAILED"
    assert error.startswith("article 3: duplicate slug 'a': the article 'Post 1'"), error
    assert sorted(Article.objects.values_list("slug", flat=True)) == ["a", "b", "c"]

    # Another connector of the organisation starts with the organisation's articles stored:
    # every slug it writes is looked up, and the one taken is refused.
    looked_up.clear()
    SyncJob.objects.filter(pk=job.pk).update(status="COMPLETED")
    other, _ = run(org_a, [article(1, slug="b"), article(2, slug="d")], write_behind=write_behind)
    assert looked_up == [["b", "d"]]
    assert log_rows(other)["1"][1] == "FAILED"


def test_written_slugs_forget_nothing_in_a_fixed_size():
    from syncjobs.engine.core import WrittenSlugs

    written = WrittenSlugs()
    size = len(written._bits)
    given = [f"post-{n}" for n in range(20_000)] + ["ünïcode-slug", "x"]
    for slug in given:
        written.add(slug)
    assert all(written.may_exist(slug) for slug in given)
    strangers = [f"other-{n}" for n in range(20_000)]
    assert sum(written.may_exist(slug) for slug in strangers) < 20  # very rarely a doubt
    assert len(written._bits) == size


@pytest.mark.django_db(transaction=True)
def test_two_connectors_importing_the_same_slug_at_once_store_it_once(org_a):
    # Both phases start while the organisation has no article, so neither looks up the
    # slugs it writes: their pages race for slug "shared", page against page, and the
    # database's unique index settles it. The loser fails that record alone, in words.
    import threading

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
    assert "took it while this one was being saved" in failed.get().error
