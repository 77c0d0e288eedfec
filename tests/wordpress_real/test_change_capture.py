"""Change capture on a real WordPress (contract 1.2): the cursor never passes the site's clock,
every change WordPress makes reaches the next incremental sync (status transitions, cron
publishing, meta and term changes, media, users), rendering is deterministic, and bad input
(a wrong clock, a change log with gaps, a record gone before its fetch) is logged, not lost.

The product engine runs against the real site as the worker would (services.start_sync →
runner.run_job), as in test_product.py.
"""

from datetime import UTC, datetime, timedelta

import pytest

from connectors.wordpress import contract
from connectors.wordpress_client import client_for
from records.models import Article, Company, Document, Event, Member
from syncjobs import services
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import run_job
from tests.conftest import make_connector

pytestmark = pytest.mark.wordpress


@pytest.fixture(autouse=True)
def leaves_the_site_as_it_was(real_wp):
    """These tests add posts and users; later test modules count the seeded ones."""
    before = real_wp.php(
        """<?php global $wpdb; echo wp_json_encode( array(
            (int) $wpdb->get_var( "SELECT MAX(ID) FROM {$wpdb->posts}" ),
            (int) $wpdb->get_var( "SELECT MAX(ID) FROM {$wpdb->users}" ) ) );"""
    )
    yield
    real_wp.php(
        f"""<?php
        require_once ABSPATH . 'wp-admin/includes/user.php';
        global $wpdb;
        $posts = $wpdb->get_col( "SELECT ID FROM {{$wpdb->posts}} WHERE ID > {before[0]}" );
        foreach ( $posts as $id ) {{ wp_delete_post( (int) $id, true ); }}
        $users = $wpdb->get_col( "SELECT ID FROM {{$wpdb->users}} WHERE ID > {before[1]}" );
        foreach ( $users as $id ) {{ wp_delete_user( (int) $id ); }}
        $quiet = get_term_by( 'name', 'Renamed quietly', 'folder' );
        if ( $quiet ) {{ wp_delete_term( $quiet->term_id, 'folder' ); }}
        // A test's retention run: the log's numbers go on from its remaining entries.
        delete_option( AA_Changes::OPT_PRUNED );"""
    )


CAPTION_POST = (
    "Intro paragraph.\n\n"
    '[caption id="attachment_7" align="alignnone" width="300"]'
    '<img class="size-medium wp-image-7" src="http://example.org/a.png" alt="" width="300" '
    'height="200" /> A captioned picture[/caption]\n\n'
    "Closing paragraph with &quot;quotes&quot;."
)
# Content that leaves per-request state behind in WordPress's renderers: an unclosed tag,
# paging markers, galleries and media shortcodes (instance counters), a caption.
NOISY_POSTS = (
    # A block post: do_blocks() moves wpautop after shortcode_unautop for the posts after it.
    "<!-- wp:paragraph -->\n<p>A block paragraph.</p>\n<!-- /wp:paragraph -->",
    "<p>Unclosed <em>emphasis\n\nNext paragraph",
    "Page one<!--nextpage-->Page two<!--more-->Rest",
    '[gallery ids="1,2"]',
    '[video src="http://example.org/v.mp4"][/video] [audio src="http://example.org/a.mp3"][/audio]',
    CAPTION_POST,
)


def test_a_caption_post_renders_the_same_bytes_wherever_it_is_served(real_wp, api):
    ids = [
        real_wp.create_post(post_title=f"Noisy {n}", post_content=content, backdate=300 - n)
        for n, content in enumerate(NOISY_POSTS * 2)
    ]
    target = real_wp.create_post(post_title="Caption", post_content=CAPTION_POST, backdate=200)
    alone = api.get(f"articles/{target}").json()
    listed = ",".join(map(str, [*ids, target]))
    after_noise = api.get("articles", params={"include": listed}).json()["items"]
    served = {item["id"]: item for item in after_noise}
    assert list(served) == [*ids, target]  # in modification order: the target comes last
    assert served[target]["content"] == alone["content"]
    assert served[target]["excerpt"] == alone["excerpt"]
    # the same holds for each noisy post: first on its own page or after the others
    for post_id in ids:
        single = api.get(f"articles/{post_id}").json()
        assert (served[post_id]["content"], served[post_id]["excerpt"]) == (
            single["content"],
            single["excerpt"],
        )


# --- the plugin's change log (§5.7) ---------------------------------------------------------

SETTLE = contract.CHANGE_SETTLE_SECONDS + 1


def head(api, endpoint="articles"):
    return api.get(endpoint, params={"per_page": 1}).json()["change_seq"]


def changed_after(api, endpoint, after):
    body = api.get(endpoint, params={"per_page": 1, "changes_after": after}).json()
    return body["changed"], body


def settle_the_change_log(real_wp):
    """Every change-log entry written so far becomes servable, as SETTLE seconds later.

    The plugin serves an entry once its stamp is CHANGE_SETTLE_SECONDS behind the site's clock
    (AA_Changes::head()). These tests are about which changes reach the log and the sync, not
    about time passing, so instead of sleeping 11 s they move the entries' stamps SETTLE seconds
    into the past, as the simulator's tests advance its clock (tests/engine/test_change_capture.py).
    Entries written afterwards are young again, as they would be. That a young entry is held
    back is checked with the real plugin in `settle_and_find`."""
    real_wp.php(
        """<?php global $wpdb; $table = AA_Changes::table();
        $wpdb->query( "UPDATE {$table} SET changed_gmt ="
            . " DATE_SUB( changed_gmt, INTERVAL SETTLE_VALUE SECOND )" );""".replace(
            "SETTLE_VALUE", str(SETTLE)
        )
    )


def settle_and_find(real_wp, api, endpoint, post_id, after):
    """The record's change-log entry after `after` is held back while it is younger than the
    settle time, and served once it is settled."""
    young = real_wp.php(
        f"""<?php global $wpdb; $table = AA_Changes::table();
        $entry = $wpdb->get_row( $wpdb->prepare(
            "SELECT seq, changed_gmt FROM {{$table}} WHERE object_id = %d AND seq > %d"
            . " ORDER BY seq DESC LIMIT 1", {post_id}, {after} ) );
        echo wp_json_encode( $entry ? array(
            'age' => time() - strtotime( $entry->changed_gmt . ' UTC' ),
            'served' => (int) $entry->seq <= AA_Changes::head(),
        ) : null );"""
    )
    assert young is not None, f"{endpoint} {post_id} is not in the change log"
    assert young["served"] == (young["age"] >= contract.CHANGE_SETTLE_SECONDS), young
    settle_the_change_log(real_wp)
    assert post_id in changed_after(api, endpoint, after)[0], f"{endpoint} {post_id} not served"


def test_list_answers_carry_the_sites_clock_and_the_change_logs_position(real_wp, api):
    body = api.get("events", params={"per_page": 1}).json()
    server_time = contract.parse_gmt(body["server_time_gmt"])
    ping_time = contract.parse_gmt(api.get("ping").json()["server_time_gmt"])
    assert abs((ping_time - server_time).total_seconds()) < 5
    assert isinstance(body["change_seq"], int) and "changed" not in body
    with_log = api.get("events", params={"per_page": 1, "changes_after": 0}).json()
    assert isinstance(with_log["changed"], list) and isinstance(with_log["changed_more"], bool)
    assert with_log["changed_next"] == with_log["change_seq"] and with_log["change_log_from"] == 0
    for bad in ("1,x", "0", ",", "1,,2", ",".join(["5"] * 101)):
        answer = api.get("events", params={"include": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["data"]["params"].keys() == {"include"}
    assert api.get("events", params={"changes_after": -1}).status_code == 400


def test_changes_that_leave_modified_gmt_alone_are_in_the_change_log(real_wp, api):
    m = real_wp.manifest
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    scheduled = real_wp.create_post(
        post_title="Scheduled", post_status="future", post_date_gmt=tomorrow
    )
    record = api.get(f"articles/{scheduled}").json()
    # WordPress stores the publish date as the modification date of a new scheduled post.
    assert (record["status"], record["modified_gmt"]) == ("future", tomorrow.replace(" ", "T"))
    event = real_wp.create_post(post_type="event", post_title="Quiet meta", backdate=60)
    tagged = real_wp.create_post(post_title="Quiet terms", backdate=60)
    folder_doc = real_wp.create_post(
        post_type="document", post_title="In a folder", backdate=60, terms={"folder": ["Quiet"]}
    )
    member = real_wp.create_user("quiet-role", role="member")
    filed = real_wp.php(
        """<?php
        $att = wp_insert_attachment(
            array( 'post_mime_type' => 'application/pdf', 'post_title' => 'Quiet file',
                   'post_status' => 'inherit' ),
            'quiet-v1.pdf'
        );
        $doc = wp_insert_post( array( 'post_type' => 'document', 'post_status' => 'publish',
                                      'post_title' => 'Filed quietly' ) );
        update_post_meta( $doc, '_association_file_id', $att );
        echo wp_json_encode( array( $doc, $att ) );"""
    )
    settle_the_change_log(real_wp)  # the set-up's own entries: `start` stands after them
    start = head(api)
    stamps = {
        "articles": (
            api.get(f"articles/{scheduled}").json()["modified_gmt"],
            api.get(f"articles/{tagged}").json()["modified_gmt"],
        ),
        "events": api.get(f"events/{event}").json()["modified_gmt"],
    }

    real_wp.php(
        f"""<?php
        wp_publish_post( {scheduled} );                       // what the cron does
        update_post_meta( {event}, '_association_event_venue', 'Hall Q' );
        wp_set_object_terms( {tagged}, array( 'quiet-tag' ), 'post_tag' );
        set_post_thumbnail( {tagged}, {m["image"]["id"]} );
        $folder = get_term_by( 'name', 'Quiet', 'folder' );
        wp_update_term( $folder->term_id, 'folder', array( 'name' => 'Renamed quietly' ) );
        ( new WP_User( {member} ) )->set_role( 'lapsed_member' );
        update_attached_file( {filed[1]}, 'quiet-v2.pdf' );   // the file replaced"""
    )
    settle_and_find(real_wp, api, "documents", filed[0], start)  # the last change: all settled

    articles, body = changed_after(api, "articles", start)
    assert {scheduled, tagged} <= set(articles)
    assert changed_after(api, "events", start)[0] == [event]
    assert {folder_doc, filed[0]} <= set(changed_after(api, "documents", start)[0])
    assert api.get(f"documents/{filed[0]}").json()["file_name"] == "quiet-v2.pdf"
    assert member in changed_after(api, "members", start)[0]
    # None of those bumped modified_gmt; the records do show the changes.
    assert api.get(f"articles/{scheduled}").json()["modified_gmt"] == stamps["articles"][0]
    assert api.get(f"articles/{tagged}").json()["modified_gmt"] == stamps["articles"][1]
    assert api.get(f"events/{event}").json()["modified_gmt"] == stamps["events"]
    fetched = api.get(
        "articles", params={"include": f"{scheduled},{tagged},999999", "per_page": 100}
    ).json()
    by_id = {item["id"]: item for item in fetched["items"]}
    assert set(by_id) == {scheduled, tagged} and fetched["total"] == 2
    assert by_id[scheduled]["status"] == "publish"
    assert by_id[tagged]["tags"] == ["quiet-tag"]
    assert by_id[tagged]["featured_image_url"] == m["image"]["url"]
    doc = api.get(f"documents/{folder_doc}").json()
    assert doc["folder_path"] == "Renamed quietly"
    # An editor merely opening a post (its edit lock) is not a change.
    after = body["change_seq"]
    real_wp.php(f"<?php update_post_meta( {event}, '_edit_lock', time() . ':1' );")
    settle_the_change_log(real_wp)  # an entry it had written would be served now
    assert changed_after(api, "events", after)[0] == []


def test_upgrading_from_plugin_1_1_creates_the_change_log_on_the_next_request(real_wp, api):
    real_wp.php(
        """<?php
        global $wpdb;
        $wpdb->query( "DROP TABLE {$wpdb->prefix}association_sync_changes" );
        update_option( 'association_app_db_version', '2' );"""
    )
    # New plugin files on an existing site: no activation, the next request upgrades.
    assert api.get("ping").status_code == 200
    state = real_wp.php(
        """<?php
        global $wpdb;
        echo wp_json_encode( array(
            get_option( 'association_app_db_version' ),
            $wpdb->get_var( "SHOW TABLES LIKE '{$wpdb->prefix}association_sync_changes'" ),
        ) );"""
    )
    assert state[0] == "3" and state[1].endswith("association_sync_changes")
    post = real_wp.create_post(post_title="After the upgrade", backdate=60)
    settle_and_find(real_wp, api, "articles", post, 0)


# --- the product's engine against the real site -----------------------------------------------


@pytest.fixture
def connector(org_a, real_wp, monkeypatch):
    monkeypatch.setattr("syncjobs.tasks.run_sync_job.delay", lambda *args, **kwargs: None)
    return make_connector(
        org_a,
        name="Real WordPress, change capture",
        site_url=real_wp.url,
        api_key=real_wp.key,
        entity_types=list(contract.ENTITY_TYPES),
    )


def run(connector, kind, wrap=None):
    """A job as the worker runs it, with the client kept for its request count; `wrap`
    stands between the engine and the client (a site that changes during the job)."""
    job = services.start_sync(connector, kind)
    with client_for(connector) as client:
        finished = run_job(job.pk, source=wrap(client) if wrap else client)
    assert finished.status == SyncJob.Status.COMPLETED, finished.error
    connector.refresh_from_db()
    return finished, client.request_count


def stored(model, wp_id):
    return model.objects.get(external_id=str(wp_id))


def test_with_scheduled_posts_present_the_next_incremental_picks_up_every_change(
    real_wp, api, connector
):
    m = real_wp.manifest
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    far = real_wp.create_post(
        post_title="Next month", post_status="future", post_date_gmt=in_a_month
    )
    due = real_wp.create_post(post_title="Due soon", post_status="future", post_date_gmt=in_an_hour)
    # Edited since it was scheduled: its modified_gmt is now the edit's, behind the cursor, so
    # only the change log can tell the platform when the cron publishes it.
    real_wp.update_post(due, post_title="Due soon (edited)")
    edited = real_wp.create_post(post_title="To edit", backdate=120)
    trashed = real_wp.create_post(post_title="To trash", backdate=120)
    event = real_wp.create_post(
        post_type="event",
        post_title="Meta only",
        backdate=120,
        meta={
            "_association_event_venue": "Room A",
            "_association_event_start_gmt": "2027-01-01 09:00:00",
        },
    )
    company = real_wp.create_post(post_type="company", post_title="Logo only", backdate=120)
    member = real_wp.create_user("role-change", role="member")
    colleague = real_wp.create_user("meta-change", role="member")
    foldered = real_wp.create_post(
        post_type="document", post_title="In a folder", backdate=120, terms={"folder": ["Quiet"]}
    )
    filed, attachment = real_wp.php(
        """<?php
        $att = wp_insert_attachment(
            array( 'post_mime_type' => 'application/pdf', 'post_title' => 'Minutes',
                   'post_status' => 'inherit' ),
            'minutes-v1.pdf'
        );
        $doc = wp_insert_post( array( 'post_type' => 'document', 'post_status' => 'publish',
                                      'post_title' => 'Filed minutes' ) );
        update_post_meta( $doc, '_association_file_id', $att );
        echo wp_json_encode( array( $doc, $att ) );"""
    )
    settle_the_change_log(real_wp)  # the set-up's entries: the full sync's position covers them
    run(connector, SyncJob.Kind.FULL)
    assert stored(Article, far).status == "future"
    server_now = contract.parse_gmt(api.get("ping").json()["server_time_gmt"])
    # The scheduled posts' dates (their modified_gmt) did not carry the cursor into the future.
    assert contract.parse_gmt(connector.cursors["article"]) <= server_now
    due_modified = contract.parse_gmt(api.get(f"articles/{due}").json()["modified_gmt"])
    assert due_modified <= contract.parse_gmt(connector.cursors["article"])

    real_wp.update_post(edited, post_title="Edited in WordPress")
    added = real_wp.create_post(post_title="Brand new")
    real_wp.php(
        f"""<?php
        wp_trash_post( {trashed} );
        wp_publish_post( {due} );                              // the cron's publishing
        update_post_meta( {event}, '_association_event_venue', 'Room B' );
        wp_set_object_terms( {edited}, array( 'late-tag' ), 'post_tag' );
        set_post_thumbnail( {company}, {m["logo"]["id"]} );
        ( new WP_User( {member} ) )->set_role( 'lapsed_member' );
        update_user_meta( {colleague}, '_association_job_title', 'Treasurer' );
        update_attached_file( {attachment}, 'minutes-v2.pdf' );  // the file replaced
        $folder = get_term_by( 'name', 'Quiet', 'folder' );
        wp_update_term( $folder->term_id, 'folder', array( 'name' => 'Renamed quietly' ) );"""
    )
    settle_the_change_log(real_wp)
    job, requests = run(connector, SyncJob.Kind.INCREMENTAL)

    article = stored(Article, edited)
    assert (article.title, article.tags) == ("Edited in WordPress", ["late-tag"])
    assert stored(Article, added).title == "Brand new"
    assert stored(Article, trashed).archived_at is not None
    assert stored(Article, due).status == "publish"
    assert stored(Article, far).status == "future"
    assert stored(Event, event).venue == "Room B"
    assert stored(Company, company).logo_url == m["logo"]["url"]
    assert stored(Member, member).membership_status == "lapsed"
    assert stored(Member, colleague).job_title == "Treasurer"
    assert stored(Document, filed).file_url.endswith("minutes-v2.pdf")
    assert stored(Document, foldered).folder_path == "Renamed quietly"
    # Nothing logged twice, nothing created twice.
    rows = SyncLogEntry.objects.filter(job=job).exclude(external_id="")
    assert rows.count() == rows.values("entity_type", "external_id").distinct().count()
    assert job.stats["article"]["created"] == 1, job.stats
    # Scheduled posts are no sign of a wrong clock: no site-level line about articles.
    assert not SyncLogEntry.objects.filter(job=job, external_id="", entity_type="article").exists()

    # Nothing changed since: one request per type, and nothing written.
    quiet, requests = run(connector, SyncJob.Kind.INCREMENTAL)
    assert requests == len(contract.ENTITY_TYPES)
    assert all(
        quiet.stats[t]["created"] == quiet.stats[t]["updated"] == 0 for t in contract.ENTITY_TYPES
    ), quiet.stats
    # The incrementals missed nothing: a reconciliation finds every record as they left it.
    reconciled, _ = run(connector, SyncJob.Kind.RECONCILE)
    assert reconciled.drift == 0, [
        (e.entity_type, e.external_id, e.operation)
        for e in reconciled.log_entries.exclude(operation="SKIP")
    ]


def test_a_no_change_full_resync_is_all_skips_with_shortcode_content(real_wp, connector):
    for n, content in enumerate(NOISY_POSTS * 2):
        real_wp.create_post(post_title=f"Shortcodes {n}", post_content=content, backdate=100 - n)
    run(connector, SyncJob.Kind.FULL)
    again, _ = run(connector, SyncJob.Kind.FULL)
    for entity_type in contract.ENTITY_TYPES:
        counters = again.stats[entity_type]
        assert counters["created"] == counters["updated"] == 0, (entity_type, counters)
        assert counters["skipped"] == counters["processed"] - counters["failed"], counters


# --- bad input on the real site (§5.7): a clear sync-log line, nothing lost or duplicated ------

EVENT_START = {"_association_event_start_gmt": "2027-03-01 09:00:00"}


def notes(job, entity_type=None):
    """The job's sync-log lines about the site rather than one record."""
    rows = SyncLogEntry.objects.filter(job=job, external_id="")
    if entity_type:
        rows = rows.filter(entity_type=entity_type)
    return list(rows.values_list("error", flat=True))


def assert_each_record_logged_once(job):
    rows = SyncLogEntry.objects.filter(job=job).exclude(external_id="")
    assert rows.count() == rows.values("entity_type", "external_id").distinct().count()


def site_clock(api):
    return contract.parse_gmt(api.get("ping").json()["server_time_gmt"])


def save_cursors(connector, cursors):
    connector.cursors = cursors
    connector.save(update_fields=["cursors"])


def test_a_wrong_site_clock_is_logged_and_no_change_is_missed(real_wp, api, connector):
    event = real_wp.create_post(
        post_type="event", post_title="Clock event", backdate=120, meta=EVENT_START
    )
    ahead = real_wp.create_post(post_title="Saved under a wrong clock", backdate=120)
    settle_the_change_log(real_wp)
    run(connector, SyncJob.Kind.FULL)
    now = site_clock(api)
    # The site's clock ran a month ahead when the last sync read the events, and was put
    # right since: the event position is later than any date WordPress writes now.
    save_cursors(
        connector, dict(connector.cursors, event=contract.format_gmt(now + timedelta(days=30)))
    )
    # An article saved while the clock was a year ahead keeps that date.
    real_wp.set_post_modified(ahead, (now + timedelta(days=400)).strftime("%Y-%m-%d %H:%M:%S"))
    real_wp.update_post(event, post_title="Clock event, edited")
    settle_the_change_log(real_wp)

    job, _ = run(connector, SyncJob.Kind.INCREMENTAL)

    [position_line] = notes(job, "event")
    assert "earlier than this connector's event position" in position_line
    assert "Every event record is read again" in position_line
    [ahead_line] = notes(job, "article")
    assert "dated more than a day after the site's clock" in ahead_line
    assert str(ahead) in ahead_line
    assert stored(Event, event).title == "Clock event, edited"
    assert stored(Article, ahead).archived_at is None
    assert job.stats["event"]["updated"] == 1 and job.stats["event"]["created"] == 0
    assert job.stats["article"]["created"] == 0
    assert_each_record_logged_once(job)
    after = site_clock(api)
    for entity_type in ("event", "article"):
        assert contract.parse_gmt(connector.cursors[entity_type]) <= after, entity_type

    # From the corrected position, the next edit is an ordinary incremental's.
    real_wp.update_post(event, post_title="Clock event, edited again")
    settle_the_change_log(real_wp)
    calm, _ = run(connector, SyncJob.Kind.INCREMENTAL)
    assert notes(calm, "event") == []
    assert stored(Event, event).title == "Clock event, edited again"
    assert calm.stats["event"]["updated"] == 1


@pytest.mark.parametrize("trouble", ["pruned", "restarted"])
def test_a_change_log_with_a_gap_or_restarted_is_logged_and_the_type_read_again(
    real_wp, api, connector, trouble
):
    company, other = (
        real_wp.create_post(post_type="company", post_title=f"Gap company {n}", backdate=120)
        for n in range(2)
    )
    settle_the_change_log(real_wp)
    run(connector, SyncJob.Kind.FULL)
    real_wp.php(
        f"<?php update_post_meta( {other}, '_association_company_industry', 'From the log' );"
    )
    settle_the_change_log(real_wp)
    run(connector, SyncJob.Kind.INCREMENTAL)
    assert stored(Company, other).industry == "From the log"
    position = connector.cursors["changes:company"]
    assert position > 0

    real_wp.php(
        f"<?php update_post_meta( {company}, '_association_company_industry', 'In the gap' );"
    )
    if trouble == "pruned":
        # The plugin's retention (AA_Changes::prune) deletes entries older than its retention:
        # those entries aged past it, the next change's request prunes them, the gap's included.
        real_wp.php(
            """<?php global $wpdb; $table = AA_Changes::table();
            $wpdb->query( "UPDATE {$table} SET changed_gmt ="
                . " DATE_SUB( changed_gmt, INTERVAL 200 DAY )" );"""
        )
        real_wp.php(
            f"<?php update_post_meta( {other}, '_association_company_website', "
            "'https://after-the-prune.example.org' );"
        )
        assert real_wp.php("<?php echo wp_json_encode( AA_Changes::pruned() );") > position
    else:
        # The log emptied (its table recreated, as by a reinstall): numbering starts again.
        real_wp.php(
            """<?php global $wpdb;
            $wpdb->query( 'TRUNCATE TABLE ' . AA_Changes::table() );
            delete_option( AA_Changes::OPT_PRUNED );"""
        )
    settle_the_change_log(real_wp)

    job, _ = run(connector, SyncJob.Kind.INCREMENTAL)

    expected = "no longer holds entries" if trouble == "pruned" else "change log restarted"
    [line] = notes(job, "company")
    assert expected in line and "Every company record is read again" in line, line
    assert stored(Company, company).industry == "In the gap"
    served = api.get("companies", params={"per_page": 1}).json()["total"]
    assert job.stats["company"]["processed"] >= served  # read again
    assert job.stats["company"]["created"] == 0  # nothing duplicated
    assert Company.objects.filter(external_id=str(company)).count() == 1
    assert_each_record_logged_once(job)
    assert connector.cursors["changes:company"] == head(api, "companies")
    calm, _ = run(connector, SyncJob.Kind.INCREMENTAL)
    assert notes(calm) == [] and calm.stats["company"]["updated"] == 0


def test_a_record_gone_between_the_change_log_and_its_fetch_is_logged_then_archived(
    real_wp, api, connector
):
    event = real_wp.create_post(
        post_type="event", post_title="Vanishing event", backdate=120, meta=EVENT_START
    )
    settle_the_change_log(real_wp)
    run(connector, SyncJob.Kind.FULL)
    real_wp.php(
        f"<?php update_post_meta( {event}, '_association_event_venue', 'Changed, then deleted' );"
    )
    settle_the_change_log(real_wp)

    class DeletesBeforeTheFetch:
        """The site deletes the event after the list answer named it, before its fetch."""

        def __init__(self, client):
            self.client = client

        def __getattr__(self, name):
            return getattr(self.client, name)

        def fetch_changed(self, entity_type, ids, **kwargs):
            if entity_type == "event" and event in ids:
                real_wp.php(f"<?php wp_delete_post( {event}, true );")
            return self.client.fetch_changed(entity_type, ids, **kwargs)

    job, _ = run(connector, SyncJob.Kind.INCREMENTAL, wrap=DeletesBeforeTheFetch)

    line = SyncLogEntry.objects.get(job=job, entity_type="event", external_id=str(event))
    assert "no longer served when the platform fetched it" in line.error
    assert "its deletion entry archives it" in line.error
    assert stored(Event, event).venue != "Changed, then deleted"
    assert_each_record_logged_once(job)

    later, _ = run(connector, SyncJob.Kind.INCREMENTAL)
    archived = SyncLogEntry.objects.get(job=later, entity_type="event", external_id=str(event))
    assert (archived.operation, archived.status) == ("ARCHIVE", "SUCCESS")
    assert Event.objects.filter(external_id=str(event)).count() == 1
    assert stored(Event, event).archived_at is not None


def test_an_existing_site_upgraded_from_plugin_1_1_is_caught_up_by_the_next_incremental(
    real_wp, api, connector
):
    """A site synced while it ran plugin 1.1, whose scheduled post carried the article
    position a month ahead (as the engine did before contract 1.2), gets the new plugin
    files (no activation): the next incremental misses nothing and duplicates nothing."""
    in_a_month = datetime.now(UTC) + timedelta(days=30)
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    scheduled = real_wp.create_post(
        post_title="Scheduled before the upgrade",
        post_status="future",
        post_date_gmt=in_a_month.strftime("%Y-%m-%d %H:%M:%S"),
    )
    due = real_wp.create_post(
        post_title="Due before the upgrade", post_status="future", post_date_gmt=in_an_hour
    )
    real_wp.update_post(due, post_title="Due before the upgrade (edited)")
    edited = real_wp.create_post(post_title="Edited after the upgrade", backdate=120)
    settle_the_change_log(real_wp)
    run(connector, SyncJob.Kind.FULL)
    # What the platform kept from plugin 1.1: no change-log positions, and the article
    # position at the scheduled post's date.
    kept = {k: v for k, v in connector.cursors.items() if not k.startswith("changes:")}
    save_cursors(connector, dict(kept, article=contract.format_gmt(in_a_month)))
    # The site as plugin 1.1 left it: no change-log table, the previous db version.
    real_wp.php(
        """<?php global $wpdb;
        $wpdb->query( "DROP TABLE {$wpdb->prefix}association_sync_changes" );
        update_option( 'association_app_db_version', '2' );"""
    )
    assert api.get("ping").status_code == 200  # the first request on the new files upgrades
    assert (
        real_wp.php("<?php echo wp_json_encode( get_option( 'association_app_db_version' ) );")
        == "3"
    )
    real_wp.update_post(edited, post_title="Edited in WordPress after the upgrade")
    real_wp.php(f"<?php wp_publish_post( {due} );")  # the cron, after the upgrade
    settle_the_change_log(real_wp)

    job, _ = run(connector, SyncJob.Kind.INCREMENTAL)

    assert stored(Article, edited).title == "Edited in WordPress after the upgrade"
    assert stored(Article, due).status == "publish"
    assert stored(Article, scheduled).status == "future"
    [line] = notes(job, "article")
    assert "earlier than this connector's article position" in line
    assert job.stats["article"]["created"] == 0
    assert_each_record_logged_once(job)
    assert all(connector.cursors[f"changes:{t}"] == head(api) for t in contract.ENTITY_TYPES)
    assert contract.parse_gmt(connector.cursors["article"]) <= site_clock(api)
    quiet, requests = run(connector, SyncJob.Kind.INCREMENTAL)
    assert notes(quiet) == [] and requests == len(contract.ENTITY_TYPES)
