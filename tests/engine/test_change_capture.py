"""Change capture (contract 1.2, §5.7) end to end against the simulator: the cursor never passes
the site's clock, changes that leave modified_gmt alone (cron publishing, meta and term changes)
reach the next incremental through the plugin's change log, an older plugin still syncs with
modified_gmt alone, and bad input (a clock set back, a log with a gap or restarted, a record gone
before its fetch, dates far ahead) gets a sync-log line and loses nothing."""

from datetime import timedelta

import pytest

from connectors.wordpress import contract
from records.models import RECORD_MODELS, Article, Event, Member
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import SIM_KEY, log_for, logs

# Past the plugin's settle time: the change log serves an entry once it is this old.
SETTLE = contract.CHANGE_SETTLE_SECONDS + 1


def stored(model, wp_id):
    return model.objects.get(external_id=str(wp_id))


def incremental(sync, connector, site):
    site.clock.advance(SETTLE)
    job = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    return job


def notes(job):
    """The job's sync-log lines about the site rather than one record."""
    return list(logs(job, external_id="").values_list("error", flat=True))


def test_a_scheduled_post_is_stored_but_never_moves_the_cursor_past_the_sites_clock(
    sync, site, connector
):
    now = site.clock.now()
    scheduled = site.schedule("article", now + timedelta(days=90))
    site.clock.advance(SETTLE)
    sync(connector)
    article = stored(Article, scheduled)
    assert article.status == "future"
    # The position is the site's "now", not the post's date three months ahead.
    assert contract.parse_gmt(connector.cursors["article"]) <= site.clock.now()
    assert connector.cursors["changes:article"] == site.change_head()

    site.clock.advance(60)
    edited = site.edit("article", 1)[0]
    added = site.add("article", 1)[0]
    job = incremental(sync, connector, site)

    assert (log_for(job, "article", edited).operation, job.stats["article"]["created"]) == (
        "UPDATE",
        1,
    )
    assert stored(Article, added).title == site.record("article", added)["title"]
    assert notes(job) == []  # a scheduled post is not a wrong clock


def test_cron_publishing_and_quiet_meta_and_term_changes_reach_the_next_incremental(
    sync, site, connector
):
    scheduled = site.schedule("article", site.clock.now() + timedelta(hours=1))
    event = site.ids("event")[0]
    member = next(i for i in site.ids("member") if i not in site.bad_ids("member"))
    site.clock.advance(SETTLE)
    sync(connector)
    before = dict(site.record("article", scheduled))

    # None of these touches modified_gmt, as in WordPress.
    site.cron_publish("article", scheduled)
    site.change_quietly("article", scheduled, categories=["Renamed category"])
    site.change_quietly("event", event, venue="Moved by update_post_meta")
    site.change_quietly("member", member, roles=["lapsed_member"])
    assert site.record("article", scheduled)["modified_gmt"] == before["modified_gmt"]
    job = incremental(sync, connector, site)

    article = stored(Article, scheduled)
    assert (article.status, article.categories) == ("publish", ["Renamed category"])
    assert stored(Event, event).venue == "Moved by update_post_meta"
    assert stored(Member, member).membership_status == "lapsed"
    assert log_for(job, "article", scheduled).operation == "UPDATE"
    # One list request per type, one fetch by id for the event and one for the member; the
    # article, dated an hour ahead, comes in its list page again until the site reaches it.
    assert sync.client.request_count == len(contract.ENTITY_TYPES) + 2


def test_a_no_change_incremental_is_one_request_per_type_and_a_repeat_fetches_nothing(
    sync, site, connector
):
    site.clock.advance(SETTLE)
    sync(connector)
    incremental(sync, connector, site)
    assert sync.client.request_count == len(contract.ENTITY_TYPES)
    site.change_quietly("company", site.ids("company")[0], industry="Quietly changed")
    job = incremental(sync, connector, site)
    assert sync.client.request_count == len(contract.ENTITY_TYPES) + 1
    assert job.stats["company"]["updated"] == 1
    again = incremental(sync, connector, site)
    assert sync.client.request_count == len(contract.ENTITY_TYPES)
    assert again.stats["company"]["updated"] == 0


def test_more_than_a_hundred_changes_are_read_in_batches_each_record_once(sync, site, connector):
    site.clock.advance(SETTLE)
    sync(connector)
    members = [i for i in site.ids("member") if i not in site.bad_ids("member")][:60]
    for round_ in range(3):  # 180 entries for 60 records
        for member in members:
            site.change_quietly("member", member, job_title=f"Title {round_}")
    job = incremental(sync, connector, site)

    assert {stored(Member, m).job_title for m in members} == {"Title 2"}
    assert job.stats["member"]["updated"] == len(members)
    rows = logs(job, entity_type="member").exclude(external_id="")
    assert rows.count() == rows.values("external_id").distinct().count() == len(members)
    assert connector.cursors["changes:member"] == site.change_head()


def test_a_record_gone_before_its_fetch_gets_a_line_and_its_deletion_archives_it(
    sync, site, connector
):
    site.clock.advance(SETTLE)
    sync(connector)
    event = site.ids("event")[0]
    site.change_quietly("event", event, venue="Changed, then deleted")
    site.clock.advance(SETTLE)

    class DeletesBeforeTheFetch:
        """The site deletes the record between the list answer and the fetch by id."""

        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            return getattr(self.client, name)

        def fetch_changed(self, entity_type, ids, **kwargs):
            if entity_type == "event" and event in ids:
                site.delete("event", ids=[event])
            return self.client.fetch_changed(entity_type, ids, **kwargs)

    job = sync(connector, SyncJob.Kind.INCREMENTAL, wrap=DeletesBeforeTheFetch)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    line = log_for(job, "event", event)
    assert "no longer served when the platform fetched it" in line.error
    assert stored(Event, event).venue != "Changed, then deleted"

    later = incremental(sync, connector, site)
    assert log_for(later, "event", event).operation == "ARCHIVE"
    assert stored(Event, event).archived_at is not None


@pytest.mark.parametrize("trouble", ["pruned", "restarted"])
def test_a_change_log_with_a_gap_or_restarted_is_logged_and_the_type_read_again(
    sync, site, connector, trouble
):
    site.clock.advance(SETTLE)
    sync(connector)
    company, other = site.ids("company")[:2]
    site.change_quietly("company", other, industry="Read from the log")
    incremental(sync, connector, site)
    assert connector.cursors["changes:company"] > 0
    site.change_quietly("company", company, industry="Changed in the gap")
    site.clock.advance(SETTLE)
    if trouble == "pruned":
        site.prune_changes(site.change_head())
    else:
        site.restart_change_log()
        site.clock.advance(SETTLE)
    job = incremental(sync, connector, site)

    assert stored(RECORD_MODELS["company"], company).industry == "Changed in the gap"
    expected = "no longer holds entries" if trouble == "pruned" else "change log restarted"
    assert any(expected in line for line in notes(job)), notes(job)
    assert job.stats["company"]["processed"] >= site.count("company")  # read again
    assert job.stats["company"]["created"] == 0  # nothing duplicated
    assert job.stats["company"]["updated"] == 1
    assert connector.cursors["changes:company"] == site.change_head()
    calm = incremental(sync, connector, site)
    assert notes(calm) == [] and calm.stats["company"]["updated"] == 0


def test_a_site_clock_set_back_behind_the_cursor_is_logged_and_nothing_is_missed(
    sync, site, connector
):
    site.clock.advance(SETTLE)
    sync(connector)
    site.edit("event", 1)
    incremental(sync, connector, site)  # the event position is now the site's present
    # The site's clock goes back a month (a wrong clock fixed, a restored server): edits now
    # carry dates older than the cursor.
    site.clock.advance(-30 * 24 * 3600)
    edited = site.edit("event", 1)[0]
    job = incremental(sync, connector, site)

    assert log_for(job, "event", edited).operation == "UPDATE"
    assert any("earlier than this connector's event position" in n for n in notes(job))
    assert contract.parse_gmt(connector.cursors["event"]) <= site.clock.now()


def test_records_dated_far_after_the_sites_clock_get_a_line(sync, site, connector):
    article = site.ids("article")[0]
    site.update("article", article, status="publish")
    ahead = site.clock.now() + timedelta(days=400)
    with site.lock:  # an edit saved while the site's clock was a year ahead
        record = site._records["article"][article]
        site._touch("article", record, modified=contract.format_gmt(ahead))
    site.clock.advance(SETTLE)
    job = sync(connector)

    assert any("dated more than a day after the site's clock" in n for n in notes(job))
    assert contract.parse_gmt(connector.cursors["article"]) <= site.clock.now()


def test_an_older_plugin_is_synced_with_modified_gmt_alone(org_a, sync):
    from wpsim import SimulatedSite, serve

    old = SimulatedSite(records=60, seed=3, key=SIM_KEY, plugin_version="1.1.0")
    with serve(old, host="127.0.0.1", port=0) as running:
        connector = make_connector(
            org_a,
            name="Plugin 1.1",
            site_url=running.url,
            api_key=SIM_KEY,
            entity_types=list(contract.ENTITY_TYPES),
        )
        sync(connector)
        assert not any(key.startswith("changes:") for key in connector.cursors)
        old.clock.advance(60)
        edited = old.edit("event", 1)[0]
        job = sync(connector, SyncJob.Kind.INCREMENTAL)
        assert job.status == SyncJob.Status.COMPLETED, job.error
        assert log_for(job, "event", edited).operation == "UPDATE"
        assert sync.client.request_count == len(contract.ENTITY_TYPES)
        requested = [entry["path"] for entry in old.request_log]
        assert not any("include=" in path for path in requested)


def test_a_record_is_the_same_bytes_in_any_page_and_a_no_change_full_resync_skips_all(
    sync, site, connector, server
):
    import httpx

    headers = {contract.KEY_HEADER: SIM_KEY}
    article = site.ids("article")[5]
    alone = httpx.get(f"{server.url}/api/v1/sync/articles/{article}", headers=headers).content
    for per_page in (7, 100):  # the article is the 6th: on the first page of both sizes
        listed = httpx.get(
            f"{server.url}/api/v1/sync/articles",
            params={"per_page": per_page, "include": ",".join(map(str, site.ids("article")))},
            headers=headers,
        ).content
        assert alone in listed
    site.schedule("article", site.clock.now() + timedelta(days=3))
    site.clock.advance(SETTLE)
    sync(connector)
    again = sync(connector)
    for entity_type in contract.ENTITY_TYPES:
        counters = again.stats[entity_type]
        assert counters["created"] == counters["updated"] == 0, (entity_type, counters)
