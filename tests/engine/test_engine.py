"""The sync engine end to end against the simulator on loopback, on PostgreSQL."""

from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.utils import timezone

from connectors.models import Connector
from connectors.wordpress import contract
from records.models import RECORD_MODELS, Article, Conference, Event, Member
from syncjobs import services
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.scheduler import sweep_stale
from tests.conftest import make_connector

from .conftest import log_for, logs

BAD_REASONS = {
    "article": "required field 'title' is missing",
    "member": "required field 'email' is missing (null in WordPress)",
    "event": "field 'start_gmt': invalid date",
    "document": "field 'size': expected a whole number",
    "conference": "field 'start_date': invalid date",
    "company": "required field 'name' is missing",
    "notification": "field 'send_at_gmt': invalid date",
}


def live(entity_type, connector):
    return RECORD_MODELS[entity_type].objects.filter(connector=connector, archived_at=None)


def test_full_sync_imports_every_type_and_reports_each_bad_record(sync, site, connector):
    job = sync(connector, SyncJob.Kind.FULL)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.finished_at and job.started_at
    # One log row per record per job.
    assert logs(job).count() == site.count()
    for entity_type in contract.ENTITY_TYPES:
        counters = job.stats[entity_type]
        served = site.count(entity_type)
        assert counters["total"] == counters["processed"] == served
        assert counters["created"] + counters["failed"] == served
        assert live(entity_type, connector).count() == counters["created"]
        for bad_id in site.bad_ids(entity_type):
            entry = log_for(job, entity_type, bad_id)
            assert (entry.operation, entry.status) == ("CREATE", "FAILED")
            # The message names the record, then says precisely what is wrong with it.
            assert entry.error.startswith(f"{entity_type} {bad_id}: {BAD_REASONS[entity_type]}")
        # Every other failure is a duplicate slug, and says which record holds it.
        others = logs(job, entity_type=entity_type, status="FAILED").exclude(
            external_id__in=[str(i) for i in site.bad_ids(entity_type)]
        )
        for entry in others:
            prefix = f"{entity_type} {entry.external_id}: duplicate slug"
            assert entry.error.startswith(prefix), entry.error
            assert "WordPress" in entry.error
        # The high-water mark is the source's own modified_gmt of its newest record.
        assert connector.cursors[entity_type] == site.high_water_mark(entity_type)
    assert site.bad_count("article") >= 1 and site.bad_count("member") >= 1
    assert connector.last_sync_at is not None
    assert connector.status == Connector.Status.ACTIVE
    assert connector.next_sync_at == connector.last_sync_at + timedelta(hours=1)


def test_stored_html_is_sanitised_and_text_decoded(sync, site, connector):
    article_id, event_id = site.ids("article")[0], site.ids("event")[0]
    site.update(
        "article",
        article_id,
        slug="sanitised-article",
        title="Tom &#038; Jerry&#8217;s <b>bold</b> title",
        content='<p onclick="steal()">Hi</p><script>alert(1)</script>'
        '<a href="javascript:x()">x</a>',
    )
    site.update(
        "event",
        event_id,
        slug="sanitised-event",
        start_gmt="2025-05-02T10:00:00",
        end_gmt=None,
        description="<iframe src='https://evil'></iframe>ok",
    )
    sync(connector)
    article = Article.objects.get(external_id=str(article_id))
    assert article.title == "Tom & Jerry’s bold title"
    assert "<script" not in article.content and "onclick" not in article.content
    assert "javascript:" not in article.content
    event = Event.objects.get(external_id=str(event_id))
    assert "<iframe" not in event.description and "ok" in event.description
    for content in Article.objects.values_list("content", flat=True):
        assert "<script" not in content


def test_resync_without_changes_skips_every_record(sync, site, connector):
    first = sync(connector)
    second = sync(connector, SyncJob.Kind.FULL)
    assert second.status == SyncJob.Status.COMPLETED
    totals = second.totals()
    assert totals["created"] == totals["updated"] == totals["archived"] == 0
    assert totals["skipped"] == first.totals()["created"]
    assert totals["failed"] == first.totals()["failed"]
    assert logs(second, operation="SKIP", status="SKIPPED").count() == totals["skipped"]


@pytest.mark.parametrize(
    "enabled", [list(contract.ENTITY_TYPES), ["member", "event", "notification"], ["company"]]
)
def test_no_change_incremental_makes_one_request_per_enabled_type(sync, site, connector, enabled):
    connector.entity_types = enabled
    connector.save()
    sync(connector)
    job = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert job.status == SyncJob.Status.COMPLETED
    # Each type's deletions came with its list page (contract 1.1): no deletions feed request.
    assert sync.client.request_count == len(enabled)
    assert job.totals()["created"] == job.totals()["updated"] == 0
    requested = [entry["path"] for entry in list(site.request_log)[-len(enabled) :]]
    assert all(contract.DELETIONS_ENDPOINT not in path for path in requested), requested


def _deleted_in_wordpress(site, connector, entity_type, n):
    """Delete n stored, good records of a type in WordPress; returns their ids."""
    stored = set(live(entity_type, connector).values_list("external_id", flat=True))
    good = [i for i in site.ids(entity_type) if str(i) in stored]
    return site.delete(entity_type, ids=good[:n])


def test_incremental_archives_deletions_reported_with_the_list_page(sync, site, connector):
    sync(connector)
    site.clock.advance(60)
    gone = _deleted_in_wordpress(site, connector, "event", 3)

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert sync.client.request_count == len(contract.ENTITY_TYPES)
    for event_id in gone:
        entry = log_for(job, "event", event_id)  # one row each
        assert (entry.operation, entry.status) == ("ARCHIVE", "SUCCESS")
        assert entry.error == "Deleted in WordPress; archived."
    assert live("event", connector).filter(external_id__in=map(str, gone)).count() == 0
    assert job.stats["event"]["archived"] == 3
    assert connector.cursors["deletions:event"] == site.deletions()[-1]["deleted_gmt"]
    # The next run asks only for deletions after that cursor (minus the overlap): the same
    # entries come back once more and are not archived or logged a second time.
    again = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert sync.client.request_count == len(contract.ENTITY_TYPES)
    assert not logs(again, operation="ARCHIVE").exists()


def test_deletions_over_the_inline_cap_are_read_from_the_feed(sync, site, connector):
    over = contract.MAX_INLINE_DELETIONS + 5
    site.add("member", over + 10)
    # The change log serves an entry once it has settled (§5.7): the full sync's position
    # then covers the additions, and the incremental has only the deletions to read.
    site.clock.advance(60)
    sync(connector)
    site.clock.advance(60)
    gone = _deleted_in_wordpress(site, connector, "member", over)
    assert len(gone) == over

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    # 7 list requests, then the feed for the members' remaining entries (2 pages of 100).
    assert sync.client.request_count == len(contract.ENTITY_TYPES) + 2
    archive_rows = logs(job, entity_type="member", operation="ARCHIVE")
    assert archive_rows.count() == over  # each record once, inline or from the feed
    assert sorted(map(int, archive_rows.values_list("external_id", flat=True))) == sorted(gone)
    assert live("member", connector).filter(external_id__in=map(str, gone)).count() == 0
    assert job.stats["member"]["archived"] == over
    assert connector.cursors["deletions:member"] == site.deletions()[-1]["deleted_gmt"]
    # All of them share one second: the next run, asking with the 2-second overlap, gets
    # them again, over the cap, so it reads the feed once more; finding nothing new, it
    # settles the mark and the runs after it need no feed.
    again = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert sync.client.request_count == len(contract.ENTITY_TYPES) + 2
    assert not logs(again, operation="ARCHIVE").exists()
    third = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert sync.client.request_count == len(contract.ENTITY_TYPES)
    assert not logs(third, operation="ARCHIVE").exists()
    # A new deletion is still seen.
    site.clock.advance(60)
    (late,) = _deleted_in_wordpress(site, connector, "member", 1)
    fourth = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert sync.client.request_count == len(contract.ENTITY_TYPES)
    assert log_for(fourth, "member", late).operation == "ARCHIVE"


def test_a_contract_1_0_site_without_inline_deletions_is_followed_through_the_feed(org_a, sync):
    from wpsim import SimulatedSite, serve

    site = SimulatedSite(
        records=200, seed=7, key="old-plugin-key-0123456789abcdef0123456789", plugin_version="1.0.0"
    )
    with serve(site, host="127.0.0.1", port=0) as running:
        connector = make_connector(
            org_a,
            site_url=running.url,
            api_key=site.key,
            entity_types=list(contract.ENTITY_TYPES),
        )
        sync(connector)
        site.clock.advance(60)
        gone = _deleted_in_wordpress(site, connector, "company", 2)

        job = sync(connector, SyncJob.Kind.INCREMENTAL)

        assert job.status == SyncJob.Status.COMPLETED, job.error
        assert sync.client.request_count == len(contract.ENTITY_TYPES) + 1  # + the feed
        assert contract.DELETIONS_ENDPOINT in site.request_log[-1]["path"]
        for company_id in gone:
            entry = log_for(job, "company", company_id)
            assert (entry.operation, entry.status) == ("ARCHIVE", "SUCCESS")
        last = site.deletions()[-1]["deleted_gmt"]
        assert all(connector.cursors[f"deletions:{t}"] == last for t in contract.ENTITY_TYPES)


def test_a_legacy_deletions_cursor_is_where_each_type_starts(sync, site, connector):
    """Cursors saved before contract 1.1 followed the feed for every type at once."""
    sync(connector)
    legacy = "2026-01-02T03:04:05"
    connector.cursors = {
        k: v for k, v in connector.cursors.items() if not k.startswith("deletions:")
    } | {"deletions": legacy}
    connector.save()
    site.request_log.clear()

    sync(connector, SyncJob.Kind.INCREMENTAL)

    since = (contract.parse_gmt(legacy) - timedelta(seconds=2)).strftime(contract.GMT_FORMAT)
    asked = [unquote(entry["path"]) for entry in site.request_log]
    assert len(asked) == len(contract.ENTITY_TYPES)
    assert all(f"deleted_since={since}" in path for path in asked), asked


def test_incremental_picks_up_edits_additions_and_deletions(sync, site, connector):
    sync(connector)
    site.clock.advance(60)
    edited = site.edit("member", 3)
    edited = [i for i in edited if i not in site.bad_ids("member")]
    added = [i for i in site.add("conference", 2) if i not in site.bad_ids("conference")]
    deleted = site.delete("company", 2)
    before_archive = {
        i: live("company", connector).filter(external_id=str(i)).exists() for i in deleted
    }

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    for member_id in edited:
        entry = log_for(job, "member", member_id)
        assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
        assert "(edited" in Member.objects.get(external_id=str(member_id)).display_name
    for conference_id in added:
        assert log_for(job, "conference", conference_id).operation == "CREATE"
    for company_id in deleted:
        if before_archive[company_id]:
            entry = log_for(job, "company", company_id)
            assert (entry.operation, entry.status) == ("ARCHIVE", "SUCCESS")
    archived = RECORD_MODELS["company"].objects.filter(
        external_id__in=[str(i) for i in deleted], archived_at__isnull=False
    )
    assert archived.count() == sum(before_archive.values())
    assert job.stats["company"]["archived"] == sum(before_archive.values())
    # Only what changed (plus the 2-second overlap) was fetched: a handful of records.
    assert job.stats["member"]["processed"] < 10
    assert job.stats["article"]["processed"] < 5
    assert connector.cursors["deletions:company"] == site.deletions()[-1]["deleted_gmt"]


def test_full_sync_archives_what_wordpress_no_longer_serves_and_restores_it(sync, site, connector):
    sync(connector)
    good = [i for i in site.ids("notification") if i not in site.bad_ids("notification")]
    gone = good[0]
    site.delete("notification", ids=[gone])
    job = sync(connector, SyncJob.Kind.FULL)
    record = RECORD_MODELS["notification"].objects.get(external_id=str(gone))
    assert record.archived_at is not None  # archived, never hard-deleted
    entry = log_for(job, "notification", gone)
    assert (entry.operation, entry.status) == ("ARCHIVE", "SUCCESS")
    assert job.stats["notification"]["archived"] == 1

    # A record that comes back after being archived is un-archived.
    back = good[1]
    RECORD_MODELS["notification"].objects.filter(external_id=str(back)).update(
        archived_at=timezone.now()
    )
    job = sync(connector, SyncJob.Kind.FULL)
    entry = log_for(job, "notification", back)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    assert RECORD_MODELS["notification"].objects.get(external_id=str(back)).archived_at is None


def test_disabling_an_entity_type_stops_its_import_and_deletes_nothing(sync, site, connector):
    sync(connector)
    members = live("member", connector).count()
    connector.entity_types = [t for t in connector.entity_types if t != "member"]
    connector.save()
    site.edit("member", 5)
    site.delete("member", 3)
    full = sync(connector, SyncJob.Kind.FULL)
    incremental = sync(connector, SyncJob.Kind.INCREMENTAL)
    for job in (full, incremental):
        assert "member" not in job.stats
        assert not logs(job, entity_type="member").exists()
    assert live("member", connector).count() == members


def test_duplicate_slug_is_refused_before_the_write(sync, site, connector):
    ids = [i for i in site.ids("conference") if i not in site.bad_ids("conference")]
    holder_id, other_id = ids[0], ids[1]
    site.update("conference", holder_id, slug="summit-2025", title="The holder")
    sync(connector)
    holder = Conference.objects.get(external_id=str(holder_id))
    assert holder.slug == "summit-2025"

    site.update("conference", other_id, slug="summit-2025")
    job = sync(connector, SyncJob.Kind.INCREMENTAL)
    entry = log_for(job, "conference", other_id)
    assert (entry.operation, entry.status) == ("UPDATE", "FAILED")
    assert entry.error == (
        f"conference {other_id}: duplicate slug 'summit-2025': the conference 'The holder' "
        f"(WordPress id {holder_id} from connector 'Simulated site') already uses it, and slugs "
        "are unique in an organisation."
    )
    assert Conference.objects.get(external_id=str(other_id)).slug != "summit-2025"


def test_duplicate_slug_within_one_batch(sync, site, connector):
    first, second = [i for i in site.ids("company") if i not in site.bad_ids("company")][:2]
    site.update("company", first, slug="same-slug")
    site.update("company", second, slug="same-slug")
    job = sync(connector)
    winner, loser = sorted(
        (log_for(job, "company", first), log_for(job, "company", second)),
        key=lambda e: e.status != "SUCCESS",
    )
    assert winner.status == "SUCCESS"
    assert loser.status == "FAILED"
    assert loser.error == (
        f"company {loser.external_id}: duplicate slug 'same-slug': company "
        f"{winner.external_id} of the same page already uses it, and slugs are unique in an "
        "organisation."
    )


def test_invalid_event_dates_fail_with_the_reason(sync, site, connector):
    event_id = next(i for i in site.ids("event") if i not in site.bad_ids("event"))
    site.update("event", event_id, start_gmt="2025-05-02T10:00:00", end_gmt="2025-05-01T10:00:00")
    conference_id = next(i for i in site.ids("conference") if i not in site.bad_ids("conference"))
    site.update("conference", conference_id, start_date="TBA")
    job = sync(connector)
    entry = log_for(job, "event", event_id)
    assert entry.status == "FAILED"
    assert entry.error == (
        f"event {event_id}: invalid dates: end_gmt 2025-05-01T10:00:00 is before "
        "start_gmt 2025-05-02T10:00:00"
    )
    entry = log_for(job, "conference", conference_id)
    assert entry.status == "FAILED"
    assert entry.error == (
        f"conference {conference_id}: field 'start_date': invalid date 'TBA' (expected YYYY-MM-DD)"
    )
    assert job.status == SyncJob.Status.COMPLETED  # the job goes on


class CountsPages:
    """The WordPress client, counting the list pages it was asked for."""

    def __init__(self, client):
        self.client = client
        self.pages = 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def iter_pages(self, entity_type, **kwargs):
        for page in self.client.iter_pages(entity_type, **kwargs):
            self.pages += 1
            yield page


class ServesMalformedRecords(CountsPages):
    """The client, with a site whose first article page also carries broken items."""

    def iter_pages(self, entity_type, **kwargs):
        for number, page in enumerate(super().iter_pages(entity_type, **kwargs)):
            if entity_type == "article" and number == 0:
                page.items = [*page.items, "not a record", {"id": "x7", "title": "No id"}]
            yield page


def test_malformed_records_fail_with_the_reason_and_the_job_goes_on(sync, site, connector):
    from connectors.wordpress_client import client_for

    client = client_for(connector)
    job = sync(connector, SyncJob.Kind.FULL, source=ServesMalformedRecords(client))
    client.close()

    assert job.status == SyncJob.Status.COMPLETED
    broken = logs(job, entity_type="article", external_id="").order_by("id")  # page order
    assert [entry.error for entry in broken] == [
        "article record without an id: malformed record: expected a JSON object, got a string",
        "article record without an id: field 'id' must be a positive integer, got a string "
        "'x7'; required field 'modified_gmt' is missing",
    ]
    assert {(e.operation, e.status) for e in broken} == {("CREATE", "FAILED")}
    served = site.count("article")
    counters = job.stats["article"]
    assert counters["processed"] == served + 2
    assert counters["created"] + counters["failed"] == served + 2
    assert Article.objects.filter(connector=connector).count() == counters["created"]


def _platform_edit(model, external_id, **fields):
    fields["platform_modified_at"] = timezone.now() + timedelta(seconds=5)
    model.objects.filter(external_id=str(external_id)).update(**fields)


def _good_article(site):
    return [i for i in site.ids("article") if i not in site.bad_ids("article")]


def test_conflict_platform_wins_keeps_the_platform_edit(sync, site, connector):
    sync(connector)
    article_id = _good_article(site)[0]
    site.edit("article", ids=[article_id])
    _platform_edit(Article, article_id, title="Edited on the platform")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("UPDATE", "CONFLICT")
    assert "the platform wins" in entry.error
    assert Article.objects.get(external_id=str(article_id)).title == "Edited on the platform"
    assert job.stats["article"]["conflicts"] == 1
    assert site.writes == []  # import only: nothing pushed


def test_conflict_wordpress_wins_overwrites(sync, site, connector):
    connector.conflict_policy = Connector.ConflictPolicy.WORDPRESS_WINS
    connector.save()
    sync(connector)
    article_id = _good_article(site)[0]
    site.edit("article", ids=[article_id])
    _platform_edit(Article, article_id, title="Edited on the platform")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    assert "overwritten by WordPress" in entry.error
    article = Article.objects.get(external_id=str(article_id))
    assert "(edited" in article.title
    assert article.platform_modified_at is None
    assert job.stats["article"]["conflicts"] == 1


def test_two_way_pushes_the_platform_version_to_wordpress(sync, site, connector):
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    article_id = _good_article(site)[0]
    site.edit("article", ids=[article_id])
    _platform_edit(Article, article_id, title="Pushed from the platform")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("SYNC", "SUCCESS"), entry.error
    assert job.stats["article"]["pushed"] == 1
    # The simulator received the write, with writable fields only.
    (write,) = site.writes
    assert write["id"] == article_id and write["fields"]["title"] == "Pushed from the platform"
    assert set(write["fields"]) <= contract.WRITABLE_FIELDS["article"]
    assert site.record("article", article_id)["title"] == "Pushed from the platform"
    # The returned record is stored; the edit is no longer pending.
    article = Article.objects.get(external_id=str(article_id))
    assert article.platform_modified_at is None
    assert article.source_modified_at == contract.parse_gmt(
        site.record("article", article_id)["modified_gmt"]
    )
    # The next sync sees WordPress and the platform agree.
    again = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert log_for(again, "article", article_id).operation == "SKIP"


def test_two_way_push_refused_by_wordpress_is_logged_once_not_retried(sync, site, connector):
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    event_id = next(i for i in site.ids("event") if i not in site.bad_ids("event"))
    site.edit("event", ids=[event_id])
    _platform_edit(Event, event_id, timezone="Mars/Olympus_Mons")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    entry = log_for(job, "event", event_id)
    assert (entry.operation, entry.status) == ("SYNC", "FAILED")
    # The plugin's own words (the invalid parameter), and what happens next.
    assert entry.error.startswith(
        f"event {event_id}: WordPress refused the platform's version: The site refused the "
        "request as invalid (rest_invalid_param): timezone: "
    ), entry.error
    assert entry.error.endswith(
        "It is not pushed again until the record is edited on the platform again."
    )
    assert job.stats["event"]["push_failed"] == 1
    assert job.status == SyncJob.Status.COMPLETED
    event = Event.objects.get(external_id=str(event_id))
    assert event.timezone == "Mars/Olympus_Mons"  # the platform keeps its edit
    assert event.push_refused_at == event.platform_modified_at
    puts = sum(1 for r in site.request_log if r["method"] == "PUT")
    assert puts == 1

    # Not pushed, not logged again: not by the next incrementals, not by a full sync.
    for kind in (SyncJob.Kind.INCREMENTAL, SyncJob.Kind.INCREMENTAL, SyncJob.Kind.FULL):
        again = sync(connector, kind)
        assert again.status == SyncJob.Status.COMPLETED, again.error
        assert not logs(again, operation="SYNC").exists(), kind
        assert again.stats["event"]["push_failed"] == 0
    assert sum(1 for r in site.request_log if r["method"] == "PUT") == 1

    # Edited again on the platform (now valid): pushed again, and accepted.
    _platform_edit(Event, event_id, timezone="Europe/Paris")
    fixed = sync(connector, SyncJob.Kind.INCREMENTAL)
    entry = log_for(fixed, "event", event_id)
    assert (entry.operation, entry.status) == ("SYNC", "SUCCESS"), entry.error
    assert site.record("event", event_id)["timezone"] == "Europe/Paris"


class ServerErrorOnPush:
    """The client, except that the site fails (HTTP 500) while a PUT is in flight."""

    def __init__(self, client, site):
        self.client = client
        self.site = site

    def __getattr__(self, name):
        return getattr(self.client, name)

    def push_record(self, entity_type, id, fields, **options):
        self.site.inject("status", entity_type, status=500, every=True)
        return self.client.push_record(entity_type, id, fields, **options)


def test_a_push_that_fails_with_a_server_error_is_retried_next_time(sync, site, connector):

    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    article_id = _quiet_article(site, connector)
    _platform_edit(Article, article_id, title="Pushed after the outage")

    job = sync(
        connector, SyncJob.Kind.INCREMENTAL, wrap=lambda client: ServerErrorOnPush(client, site)
    )

    assert job.status == SyncJob.Status.FAILED  # the site is down: the job stops
    assert "HTTP 500" in job.error
    article = Article.objects.get(external_id=str(article_id))
    assert article.push_refused_at is None  # not WordPress's answer to the record

    site.clear_faults()
    again = sync(connector, SyncJob.Kind.INCREMENTAL)
    entry = log_for(again, "article", article_id)
    assert (entry.operation, entry.status) == ("SYNC", "SUCCESS"), entry.error
    assert site.record("article", article_id)["title"] == "Pushed after the outage"


def _quiet_article(site, connector):
    """A stored article an incremental run does not read again: its WordPress version is
    older than the cursor minus the overlap, so only the platform knows of its edit."""
    unread = contract.parse_gmt(connector.cursors["article"]) - timedelta(seconds=60)
    stored = set(live("article", connector).values_list("external_id", flat=True))
    return next(
        i
        for i in sorted(
            _good_article(site), key=lambda i: site.record("article", i)["modified_gmt"]
        )
        if str(i) in stored
        and contract.parse_gmt(site.record("article", i)["modified_gmt"]) < unread
    )


def test_two_way_incremental_pushes_a_platform_only_edit(sync, site, connector):
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    article_id = _quiet_article(site, connector)
    before = Article.objects.get(external_id=str(article_id))
    _platform_edit(Article, article_id, title="Edited only on the platform")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    entry = log_for(job, "article", article_id)  # one row: not read in the pages, pushed once
    assert (entry.operation, entry.status, entry.error) == ("SYNC", "SUCCESS", "")
    assert job.stats["article"]["pushed"] == 1
    assert job.stats["article"]["push_failed"] == 0
    (write,) = site.writes
    assert write["id"] == article_id
    assert write["fields"]["title"] == "Edited only on the platform"
    assert set(write["fields"]) <= contract.WRITABLE_FIELDS["article"]
    # §7.2: sent with the WordPress version the platform edit was made from.
    assert contract.parse_gmt(write["body"][contract.IF_UNMODIFIED_SINCE_KEY]) == (
        before.source_modified_at
    )
    in_wordpress = site.record("article", article_id)
    assert in_wordpress["title"] == "Edited only on the platform"
    # Stored as WordPress returned it, as a full sync's push does: the edit is no longer pending.
    article = Article.objects.get(external_id=str(article_id))
    assert article.title == "Edited only on the platform"
    assert article.platform_modified_at is None
    assert article.source_modified_at == contract.parse_gmt(in_wordpress["modified_gmt"])
    assert article.last_synced_at > before.last_synced_at
    assert article.content_hash != before.content_hash

    # The push bumped modified_gmt, so the next incremental reads the record again: it finds
    # WordPress and the platform agree and pushes nothing a second time.
    again = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert (log_for(again, "article", article_id).operation) == "SKIP"
    assert again.stats["article"]["pushed"] == 0
    third = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert not logs(third, operation="SYNC").exists()
    assert len(site.writes) == 1


class WordPressEditsFirst:
    """The client, except that an editor saves the record in WordPress just before the
    first PUT arrives (after the incremental's pages were read), `seconds` from now on the
    site's clock (negative: stamped before the platform edit)."""

    def __init__(self, client, site, seconds=60):
        self.client = client
        self.site = site
        self.seconds = seconds
        self.puts = 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def push_record(self, entity_type, id, fields, **options):
        self.puts += 1
        if self.puts == 1:
            self.site.clock.advance(self.seconds)
            self.site.edit(entity_type, ids=[id])
        return self.client.push_record(entity_type, id, fields, **options)


def _two_way_with_a_platform_edit(sync, site, connector, policy=None):
    connector.sync_direction = Connector.Direction.TWO_WAY
    if policy:
        connector.conflict_policy = policy
    connector.save()
    sync(connector)
    article_id = _quiet_article(site, connector)
    _platform_edit(Article, article_id, title="Edited only on the platform")
    return article_id


@pytest.mark.parametrize(
    "policy", [Connector.ConflictPolicy.PLATFORM_WINS, Connector.ConflictPolicy.WORDPRESS_WINS]
)
def test_two_way_push_answered_409_for_a_newer_wordpress_edit_takes_wordpress_version(
    sync, site, connector, policy
):
    """The 409 says WordPress changed the record after the version the platform edit was
    made from, and its answer carries that version: newer than the platform edit, it is
    stored under either policy, the conflict counted, and the stale edit never pushed again
    (it used to be pushed, and refused, at every incremental until a full sync)."""
    article_id = _two_way_with_a_platform_edit(sync, site, connector, policy)

    job = sync(
        connector, SyncJob.Kind.INCREMENTAL, wrap=lambda client: WordPressEditsFirst(client, site)
    )

    assert job.status == SyncJob.Status.COMPLETED, job.error
    in_wordpress = site.record("article", article_id)
    assert "(edited" in in_wordpress["title"]  # WordPress kept its edit
    assert site.writes == []
    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    assert entry.error.startswith("Conflict: WordPress refused the push (409)"), entry.error
    assert "the WordPress change is newer than the platform edit" in entry.error
    assert job.stats["article"]["conflicts"] == 1
    assert job.stats["article"]["push_failed"] == 0 and job.stats["article"]["pushed"] == 0
    article = Article.objects.get(external_id=str(article_id))
    assert article.title == in_wordpress["title"]
    assert article.platform_modified_at is None  # settled: nothing pending any more
    assert article.source_modified_at == contract.parse_gmt(in_wordpress["modified_gmt"])

    for _ in range(2):
        again = sync(connector, SyncJob.Kind.INCREMENTAL)
        assert again.status == SyncJob.Status.COMPLETED, again.error
        assert not logs(again, operation="SYNC").exists()
        assert again.totals().get("push_failed", 0) == 0
    assert site.writes == []


def test_two_way_push_answered_409_pushes_a_newer_platform_edit_once_more(sync, site, connector):
    """The platform edit is newer than the WordPress change the 409 reports, and the
    platform wins: it is pushed over the version the answer carries, at once."""
    article_id = _two_way_with_a_platform_edit(sync, site, connector)

    job = sync(
        connector,
        SyncJob.Kind.INCREMENTAL,
        wrap=lambda client: WordPressEditsFirst(client, site, seconds=-120),
    )

    assert job.status == SyncJob.Status.COMPLETED, job.error
    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status, entry.error) == ("SYNC", "SUCCESS", "")
    assert job.stats["article"]["conflicts"] == 1 and job.stats["article"]["pushed"] == 1
    assert job.stats["article"]["push_failed"] == 0
    (write,) = site.writes
    # The second PUT names the WordPress version the 409 carried.
    assert write["body"][contract.IF_UNMODIFIED_SINCE_KEY] > "2025"
    assert site.record("article", article_id)["title"] == "Edited only on the platform"
    assert Article.objects.get(external_id=str(article_id)).platform_modified_at is None
    again = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert not logs(again, operation="SYNC").exists() and len(site.writes) == 1


def test_two_way_push_answered_409_for_an_older_wordpress_edit_follows_wordpress_wins(
    sync, site, connector
):
    article_id = _two_way_with_a_platform_edit(
        sync, site, connector, Connector.ConflictPolicy.WORDPRESS_WINS
    )

    job = sync(
        connector,
        SyncJob.Kind.INCREMENTAL,
        wrap=lambda client: WordPressEditsFirst(client, site, seconds=-120),
    )

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    assert "(conflict policy: WordPress wins)" in entry.error
    assert site.writes == [] and job.stats["article"]["conflicts"] == 1
    article = Article.objects.get(external_id=str(article_id))
    assert "(edited" in article.title and article.platform_modified_at is None


def test_two_way_push_answered_409_twice_fails_and_stays_pending(sync, site, connector):
    """An editor who saves again before the second PUT too: the push fails, says why, and the
    edit is still pending for the next sync (the conflict was counted once)."""

    class EditsBeforeEveryPut(WordPressEditsFirst):
        def push_record(self, entity_type, id, fields, **options):
            self.puts += 1
            # Each edit later than the one before, all before the platform edit.
            self.site.clock.advance(self.seconds if self.puts == 1 else 30)
            self.site.edit(entity_type, ids=[id])
            return self.client.push_record(entity_type, id, fields, **options)

    article_id = _two_way_with_a_platform_edit(sync, site, connector)

    job = sync(
        connector,
        SyncJob.Kind.INCREMENTAL,
        wrap=lambda client: EditsBeforeEveryPut(client, site, seconds=-120),
    )

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("SYNC", "FAILED")
    assert entry.error.startswith(
        f"article {article_id}: pushing the platform's version to WordPress failed: The record "
        "was changed in WordPress after the platform last read it"
    ), entry.error
    assert job.stats["article"]["conflicts"] == 1 and job.stats["article"]["push_failed"] == 1
    assert site.writes == []
    article = Article.objects.get(external_id=str(article_id))
    assert article.title == "Edited only on the platform"
    assert article.platform_modified_at is not None  # still pending, not lost


@pytest.mark.parametrize(
    "policy", [Connector.ConflictPolicy.PLATFORM_WINS, Connector.ConflictPolicy.WORDPRESS_WINS]
)
@pytest.mark.parametrize("kind", [SyncJob.Kind.FULL, SyncJob.Kind.INCREMENTAL])
def test_two_way_pushes_a_platform_only_edit_under_either_policy(
    sync, site, connector, policy, kind
):
    """No WordPress edit to arbitrate: the policy does not apply, the edit is pushed."""
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.conflict_policy = policy
    connector.save()
    sync(connector)
    article_id = _quiet_article(site, connector)
    _platform_edit(Article, article_id, title="Edited only on the platform")

    job = sync(connector, kind)

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status, entry.error) == ("SYNC", "SUCCESS", "")
    assert job.stats["article"]["pushed"] == 1 and job.stats["article"]["conflicts"] == 0
    assert site.record("article", article_id)["title"] == "Edited only on the platform"
    assert Article.objects.get(external_id=str(article_id)).platform_modified_at is None


@pytest.mark.parametrize("kind", [SyncJob.Kind.FULL, SyncJob.Kind.INCREMENTAL])
def test_two_way_conflict_follows_the_policy(sync, site, connector, kind):
    """Edited on both sides: platform wins pushes, WordPress wins overwrites and pushes nothing."""
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    first, second = _good_article(site)[:2]
    site.edit("article", ids=[first, second])
    _platform_edit(Article, first, title="Platform edit, platform wins")

    job = sync(connector, kind)

    entry = log_for(job, "article", first)
    assert (entry.operation, entry.status) == ("SYNC", "SUCCESS"), entry.error
    assert site.record("article", first)["title"] == "Platform edit, platform wins"
    assert job.stats["article"]["conflicts"] == 1

    connector.conflict_policy = Connector.ConflictPolicy.WORDPRESS_WINS
    connector.save()
    site.clock.advance(5)
    site.edit("article", ids=[second])
    _platform_edit(Article, second, title="Platform edit, WordPress wins")
    writes = len(site.writes)

    job = sync(connector, kind)

    entry = log_for(job, "article", second)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    assert "overwritten by WordPress" in entry.error
    assert len(site.writes) == writes  # nothing pushed
    article = Article.objects.get(external_id=str(second))
    assert "(edited" in article.title and article.platform_modified_at is None
    assert job.stats["article"]["conflicts"] == 1


def test_import_only_incremental_pushes_no_platform_edit(sync, site, connector):
    assert connector.sync_direction == Connector.Direction.IMPORT
    sync(connector)
    article_id = _quiet_article(site, connector)
    _platform_edit(Article, article_id, title="Edited only on the platform")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert site.writes == []
    assert not logs(job, entity_type="article", external_id=str(article_id)).exists()
    assert not logs(job, operation="SYNC").exists()
    assert job.stats["article"]["pushed"] == job.stats["article"]["push_failed"] == 0
    article = Article.objects.get(external_id=str(article_id))
    assert article.title == "Edited only on the platform"
    assert article.platform_modified_at is not None


def test_cancel_is_honoured_within_one_page(sync, site, connector, settings, monkeypatch):
    from connectors.wordpress_client import client_for
    from syncjobs.engine.store import DjangoStore

    settings.SYNC_PAGE_SIZE = 10
    store_page = DjangoStore.commit_page

    def admin_cancels_while_the_first_page_is_stored(self, page):
        if (
            page.logs
            and not SyncJob.objects.filter(
                pk=self.job.pk, cancel_requested_at__isnull=False
            ).exists()
        ):
            services.request_cancel(self.job)
        return store_page(self, page)

    monkeypatch.setattr(DjangoStore, "commit_page", admin_cancels_while_the_first_page_is_stored)
    client = client_for(connector)
    source = CountsPages(client)
    job = sync(connector, SyncJob.Kind.FULL, source=source)
    client.close()

    assert job.status == SyncJob.Status.CANCELLED
    assert job.error.startswith("Cancelled at an administrator's request")
    # The page fetched ahead while the first one was stored is dropped, never stored.
    assert source.pages <= 2
    assert Article.objects.count() + logs(job, status="FAILED").count() == 10
    assert logs(job).count() == 10
    assert job.stats["article"]["processed"] == 10
    assert job.cancel_requested_at is not None
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ACTIVE


class DiesAfterPages:
    """The client, in a worker that is killed (SIGKILL-like: no exception handler runs)."""

    def __init__(self, client, pages):
        self.client = client
        self.limit = pages

    def __getattr__(self, name):
        return getattr(self.client, name)

    def iter_pages(self, entity_type, **kwargs):
        for number, page in enumerate(self.client.iter_pages(entity_type, **kwargs), 1):
            if number > self.limit:
                raise KeyboardInterrupt("worker killed")
            yield page


def test_crash_mid_job_is_swept_then_rerun_without_duplicates(sync, site, connector, settings):
    from connectors.wordpress_client import client_for

    settings.SYNC_PAGE_SIZE = 20
    settings.SYNC_STALE_AFTER_SECONDS = 60
    client = client_for(connector)
    with pytest.raises(KeyboardInterrupt):
        sync(connector, SyncJob.Kind.FULL, source=DiesAfterPages(client, 2))
    client.close()
    dead = SyncJob.objects.get(connector=connector)
    assert dead.status == SyncJob.Status.RUNNING  # nobody finished it: the worker died
    committed = Article.objects.count()
    assert 0 < committed <= 40  # the two pages stored before the crash stay stored

    SyncJob.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert sweep_stale() == 1
    dead.refresh_from_db()
    assert dead.status == SyncJob.Status.FAILED and "stopped responding" in dead.error

    rerun = sync(connector, SyncJob.Kind.FULL)
    assert rerun.status == SyncJob.Status.COMPLETED
    assert rerun.stats["article"]["skipped"] == committed
    served = site.count("article")
    assert Article.objects.count() + rerun.stats["article"]["failed"] == served
    assert Article.objects.values("external_id").distinct().count() == Article.objects.count()


class EditsDuringTheListing:
    """The client, except that an editor saves records in WordPress as soon as the first
    page of their type was read: they come again at the end of the listing (§5.5)."""

    def __init__(self, client, site, entity_type, ids):
        self.client, self.site = client, site
        self.entity_type, self.ids = entity_type, ids

    def __getattr__(self, name):
        return getattr(self.client, name)

    def iter_pages(self, entity_type, **kwargs):
        for number, page in enumerate(self.client.iter_pages(entity_type, **kwargs), 1):
            yield page
            if number == 1 and entity_type == self.entity_type:
                self.site.edit(entity_type, ids=self.ids)


def _first_articles(site, n):
    """The n good articles a full listing returns first."""
    ordered = sorted(
        _good_article(site), key=lambda i: (site.record("article", i)["modified_gmt"], i)
    )
    return ordered[:n]


def _edited_during(sync, site, connector, ids, kind=SyncJob.Kind.FULL):

    job = sync(
        connector, kind, wrap=lambda client: EditsDuringTheListing(client, site, "article", ids)
    )
    assert job.status == SyncJob.Status.COMPLETED, job.error
    return job


@pytest.mark.parametrize("first_sync", [True, False])
def test_a_record_edited_in_wordpress_during_a_full_sync_gets_one_log_row(
    sync, site, connector, settings, first_sync
):
    settings.SYNC_PAGE_SIZE = 10
    if not first_sync:
        sync(connector)
    ids = _first_articles(site, 2)

    job = _edited_during(sync, site, connector, ids)

    for article_id in ids:
        rows = list(logs(job, entity_type="article", external_id=str(article_id)))
        assert len(rows) == 1, [(r.operation, r.status, r.error) for r in rows]
        # The record as it is now, and the row tells what this job did to it.
        expected = "CREATE" if first_sync else "UPDATE"
        assert (rows[0].operation, rows[0].status) == (expected, "SUCCESS")
        assert "(edited" in Article.objects.get(external_id=str(article_id)).title
    counters = job.stats["article"]
    assert counters["processed"] == counters["total"] == logs(job, entity_type="article").count()
    if first_sync:
        assert counters["created"] + counters["failed"] == counters["processed"]
    else:
        assert counters["updated"] == 2
        assert counters["skipped"] + counters["failed"] + 2 == counters["processed"]


def test_a_record_pushed_during_a_full_sync_gets_one_log_row(sync, site, connector, settings):
    """The push itself is an edit in WordPress: the record comes again, unchanged."""
    settings.SYNC_PAGE_SIZE = 10
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    (article_id,) = _first_articles(site, 1)
    _platform_edit(Article, article_id, title="Pushed during the listing")

    job = sync(connector, SyncJob.Kind.FULL)

    rows = list(logs(job, entity_type="article", external_id=str(article_id)))
    assert [(r.operation, r.status) for r in rows] == [("SYNC", "SUCCESS")]
    counters = job.stats["article"]
    assert counters["pushed"] == 1
    assert counters["processed"] == counters["total"] == logs(job, entity_type="article").count()


@pytest.mark.parametrize(
    ("break_site", "message"),
    [
        (lambda site: site.rotate_key(), "key"),
        (lambda site: site.inject("plugin_missing"), "plugin"),
        (lambda site: site.inject("disabled"), "switched off"),
    ],
)
def test_critical_errors_fail_the_job_with_the_reason(sync, site, connector, break_site, message):
    break_site(site)
    job = sync(connector)
    assert job.status == SyncJob.Status.FAILED
    assert message in job.error.lower()
    assert SyncJob.objects.get(pk=job.pk).error == job.error
    assert connector.status == Connector.Status.ERROR
    assert job.error in connector.status_message
    # Fixed site, next good sync: back to ACTIVE.
    site.clear_faults()
    site.rotate_key(connector.api_key)
    assert sync(connector).status == SyncJob.Status.COMPLETED
    assert connector.status == Connector.Status.ACTIVE and connector.status_message == ""


def test_unreachable_site_fails_the_job(org_a, sync):
    from tests.conftest import make_connector

    connector = make_connector(
        org_a, name="Gone", site_url="http://127.0.0.1:9", entity_types=["article"]
    )
    job = sync(connector)
    assert job.status == SyncJob.Status.FAILED
    assert "127.0.0.1" in job.error or "connect" in job.error.lower()
    assert connector.status == Connector.Status.ERROR


def test_failed_job_leaves_a_paused_connector_paused(sync, site, connector):
    connector.status = Connector.Status.PAUSED
    connector.save()
    site.rotate_key()
    job = sync(connector)
    assert job.status == SyncJob.Status.FAILED
    assert connector.status == Connector.Status.PAUSED


def test_paused_connector_is_skipped_by_the_scheduler_but_syncable_by_hand(sync, site, connector):
    from syncjobs.scheduler import dispatch_due

    connector.status = Connector.Status.PAUSED
    connector.next_sync_at = timezone.now() - timedelta(minutes=1)
    connector.save()
    assert dispatch_due() == []
    job = sync(connector, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.COMPLETED
    assert connector.status == Connector.Status.PAUSED


def test_initial_import_runs_once_then_is_refused(sync, site, connector):
    job = sync(connector, SyncJob.Kind.INITIAL)
    assert job.status == SyncJob.Status.COMPLETED
    assert connector.initial_import_done_at is not None
    with pytest.raises(services.InitialImportAlreadyDone, match="already completed"):
        services.start_sync(connector, SyncJob.Kind.INITIAL)
    # Even a job row created behind the service's back is refused by the runner.
    from syncjobs.runner import run_job

    sneaky = SyncJob.objects.create(connector=connector, kind=SyncJob.Kind.INITIAL)
    run_job(sneaky.pk)
    sneaky.refresh_from_db()
    assert sneaky.status == SyncJob.Status.FAILED
    assert "Use Run Full Sync" in sneaky.error


def test_invalid_field_mapping_override_fails_clearly(sync, connector):
    connector.field_mapping_overrides = {"article": {"headline": "title"}}
    connector.save()
    job = sync(connector)
    assert job.status == SyncJob.Status.FAILED
    assert "field mapping is invalid" in job.error and "'headline'" in job.error


def test_field_mapping_override_is_applied(sync, site, connector):
    connector.field_mapping_overrides = {"member": {"company": "address.city"}}
    connector.entity_types = ["member"]
    connector.save()
    sync(connector)
    member_id = site.ids("member")[0]
    city = site.record("member", member_id)["address"]["city"] or ""
    assert Member.objects.get(external_id=str(member_id)).company == city


def test_progress_is_published_on_the_job(sync, site, connector, settings):
    settings.SYNC_PAGE_SIZE = 25
    job = sync(connector)
    assert job.current_entity_type == "notification"
    assert set(job.stats) == set(contract.ENTITY_TYPES)
    assert job.heartbeat_at >= job.started_at


def test_log_rows_point_at_the_platform_record(sync, site, connector):
    job = sync(connector)
    entry = logs(job, entity_type="member", status="SUCCESS").first()
    assert Member.objects.get(pk=entry.internal_id).external_id == entry.external_id
    assert (
        SyncLogEntry.objects.filter(job=job, internal_id__isnull=True, status="SUCCESS").count()
        == 0
    )


def test_image_mirroring_downloads_checks_and_reports(sync, site, server, connector):
    from django.core.files.storage import default_storage

    connector.mirror_images = True
    connector.entity_types = ["article"]
    connector.save()
    ids = [i for i in site.ids("article") if i not in site.bad_ids("article")]
    pdf_id, png_id, broken_id = ids[0], ids[1], ids[2]
    uploads = f"{server.url}/wp-content/uploads/2024/11"
    site.update("article", pdf_id, slug="pdf-not-image", featured_image_url=f"{uploads}/a.pdf")
    site.update("article", png_id, slug="real-png", featured_image_url=f"{uploads}/b.png")
    site.update(
        "article", broken_id, slug="broken-img", featured_image_url=f"{uploads}/missing-c.png"
    )

    job = sync(connector)

    assert job.status == SyncJob.Status.COMPLETED
    entry = log_for(job, "article", broken_id)
    assert entry.status == "FAILED"
    assert entry.error == (
        f"article {broken_id}: the image {uploads}/missing-c.png could not be downloaded: "
        "the site answered HTTP 404."
    )
    entry = log_for(job, "article", pdf_id)
    assert entry.status == "FAILED"
    assert entry.error.startswith(f"article {pdf_id}: the image {uploads}/a.pdf could not be")
    assert "a.pdf is not a PNG, JPEG, GIF or WebP image" in entry.error
    article = Article.objects.get(external_id=str(png_id))
    assert article.featured_image.name.endswith(".png")
    with default_storage.open(article.featured_image.name) as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    for article in Article.objects.exclude(featured_image_url=""):
        assert article.featured_image.name  # every stored article with an image has its copy
    # Re-sync: nothing downloaded again, nothing changed.
    again = sync(connector)
    assert log_for(again, "article", png_id).operation == "SKIP"


def test_image_larger_than_the_limit_is_refused(sync, site, server, connector, settings):
    settings.SYNC_MIRROR_MAX_BYTES = 50
    connector.mirror_images = True
    connector.entity_types = ["article"]
    connector.save()
    article_id = next(i for i in site.ids("article") if i not in site.bad_ids("article"))
    site.update(
        "article",
        article_id,
        slug="big-image",
        featured_image_url=f"{server.url}/wp-content/uploads/2024/11/big.jpg",
    )
    job = sync(connector)
    entry = log_for(job, "article", article_id)
    assert entry.status == "FAILED"
    assert "larger than the limit of 50 bytes" in entry.error


def test_sync_command_runs_in_process_and_prints_the_summary(site, connector):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sync", str(connector.pk), "--kind", "full", "--wait", "--in-process", stdout=out)
    text = out.getvalue()
    assert "COMPLETED" in text
    assert f"member{' ' * 8}{site.count('member'):>8}" in text
    job = SyncJob.objects.get(connector=connector)
    assert job.status == SyncJob.Status.COMPLETED
    out = StringIO()
    call_command("sync", connector.name, "--kind", "incremental", stdout=out)
    assert "queued" in out.getvalue()


def test_records_swapping_slugs_in_one_page_are_both_saved(sync, site, connector):
    # Two WordPress posts renamed into each other's slug: each write frees the slug the
    # other takes, inside one statement. Both must be stored, neither refused.
    first, second = [i for i in site.ids("company") if i not in site.bad_ids("company")][:2]
    site.update("company", first, slug="slug-one")
    site.update("company", second, slug="slug-two")
    sync(connector)
    site.update("company", first, slug="slug-two")
    site.update("company", second, slug="slug-one")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    companies = RECORD_MODELS["company"].objects
    for company_id, slug in ((first, "slug-two"), (second, "slug-one")):
        entry = log_for(job, "company", company_id)
        assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS"), entry.error
        assert companies.get(external_id=str(company_id)).slug == slug
    assert job.stats["company"]["failed"] == 0


def test_database_refusal_fails_only_the_culprits(sync, site, connector, monkeypatch):
    # Another connector of the organisation writes a slug between the pre-check and the
    # write (simulated by a pre-check that sees nothing): the unique index refuses the page,
    # which is retried row by row so only the culprit fails.
    from syncjobs.engine.store import DjangoStore

    first, second = [i for i in site.ids("company") if i not in site.bad_ids("company")][:2]
    sync(connector)
    other = make_connector(connector.organisation, name="Other site")
    RECORD_MODELS["company"].objects.create(
        organisation=connector.organisation,
        connector=other,
        external_id="1",
        name="Taken elsewhere",
        slug="taken-slug",
    )
    monkeypatch.setattr(DjangoStore, "slug_holders", lambda self, entity_type, slugs: {})
    site.update("company", first, slug="taken-slug")
    site.update("company", second, name="Still saved")

    job = sync(connector, SyncJob.Kind.INCREMENTAL)

    assert job.status == SyncJob.Status.COMPLETED
    entry = log_for(job, "company", first)
    assert (entry.operation, entry.status) == ("UPDATE", "FAILED")
    assert entry.error == (
        f"company {first}: duplicate slug 'taken-slug': another record of this organisation "
        "took it while this one was being saved (slugs are unique in an organisation)."
    )
    assert log_for(job, "company", second).status == "SUCCESS"
    company = RECORD_MODELS["company"].objects.get(connector=connector, external_id=str(second))
    assert company.name == "Still saved"
    assert job.stats["company"]["failed"] == 1 and job.stats["company"]["updated"] == 1


def test_the_sync_command_summary_prints_pushes_and_push_failures(sync, site, connector):
    """`manage.py sync --wait` on a two-way connector: the summary's columns say how many
    platform edits each type pushed and how many WordPress refused."""
    from io import StringIO

    from django.core.management import call_command

    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    sync(connector)
    article_id = _good_article(site)[0]
    event_id = next(i for i in site.ids("event") if i not in site.bad_ids("event"))
    _platform_edit(Article, article_id, title="Pushed by the command")
    _platform_edit(Event, event_id, timezone="Mars/Olympus_Mons")  # the plugin refuses it

    out = StringIO()
    call_command(
        "sync", str(connector.pk), "--kind", "incremental", "--wait", "--in-process", stdout=out
    )

    lines = out.getvalue().splitlines()
    header = next(line.split() for line in lines if line.startswith("entity"))
    rows = {line.split()[0]: dict(zip(header, line.split())) for line in lines[2:]}
    assert rows["article"]["pushed"] == "1" and rows["article"]["push_failed"] == "0"
    assert rows["event"]["pushed"] == "0" and rows["event"]["push_failed"] == "1"
    assert site.record("article", article_id)["title"] == "Pushed by the command"
