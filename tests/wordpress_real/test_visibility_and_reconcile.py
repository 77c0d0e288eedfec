"""On a real WordPress running the plugin: drafts, scheduled, pending, private and
password-protected posts of every type are stored with their status and never as published;
a user without a role has no membership; a reconciliation after normal incremental syncs
finds no drift, and finds and repairs a change made behind the plugin's back (direct SQL).

Posts and users these tests create are deleted afterwards: other tests count the records.
"""

import pytest
from django.urls import reverse

from connectors.wordpress import contract
from records.models import RECORD_MODELS, Article, Member, Notification
from syncjobs.models import SyncJob

from .test_product import connector as connector
from .test_product import entry, record, sync, wait_for_the_next_wordpress_second

pytestmark = pytest.mark.wordpress

# Post type -> (entity type, the meta a valid record needs, its body field).
POST_TYPES = {
    "post": ("article", {}, "content"),
    "event": ("event", {"_association_event_start_gmt": "2026-02-01 09:00:00"}, "description"),
    "document": ("document", {}, None),
    "conference": (
        "conference",
        {"_association_conference_start_date": "2026-06-10"},
        "description",
    ),
    "company": ("company", {}, "description"),
    "notification": ("notification", {"_association_notification_audience": "all"}, "body"),
}
STATUSES = {
    "draft": {"post_status": "draft"},
    "pending": {"post_status": "pending"},
    "private": {"post_status": "private"},
    "future": {
        "post_status": "future",
        "post_date": "2031-05-01 10:00:00",
        "post_date_gmt": "2031-05-01 08:00:00",
    },
    "protected": {"post_status": "publish", "post_password": "secret-word"},
    "publish": {"post_status": "publish"},
}


@pytest.fixture
def created(real_wp):
    """Creates posts (backdated: a scheduled post's modification time stays in the past, so
    no cursor depends on it) and deletes them afterwards."""
    ids = []

    def create(backdate=120, **postarr):
        post = real_wp.create_post(backdate=backdate, **postarr)
        ids.append(post)
        return post

    yield create
    if ids:
        real_wp.php(
            "<?php foreach ( array( "
            + ", ".join(map(str, ids))
            + " ) as $id ) { wp_delete_post( $id, true ); }"
        )


def test_every_post_type_is_stored_with_its_status_and_protection(real_wp, api, connector, created):
    posts = {}
    for post_type, (entity_type, meta, _body) in POST_TYPES.items():
        for name, fields in STATUSES.items():
            posts[entity_type, name] = created(
                post_type=post_type,
                post_title=f"{name} {post_type}",
                post_content="<p>Members-only body text.</p>",
                meta=meta,
                **fields,
            )

    # The plugin serves status and password_protected for every post type (§9.0).
    for entity_type, endpoint in contract.ENTITY_ENDPOINTS.items():
        if entity_type == "member":
            continue
        served = {i["id"]: i for i in api.get(endpoint, params={"per_page": 100}).json()["items"]}
        for name in STATUSES:
            item = served[posts[entity_type, name]]
            assert item["password_protected"] is (name == "protected"), (entity_type, name)
            assert item["status"] == STATUSES[name]["post_status"], (entity_type, name)

    job = sync(connector)

    for (entity_type, name), post in posts.items():
        log = entry(job, entity_type, post)
        assert (log.operation, log.status) == ("CREATE", "SUCCESS"), (entity_type, name, log.error)
        model = RECORD_MODELS[entity_type]
        stored = record(model, post)
        assert stored.status == STATUSES[name]["post_status"], (entity_type, name)
        assert stored.password_protected is (name == "protected")
        assert stored.is_published is (name == "publish"), (entity_type, name)
        published = model.objects.filter(connector=connector).published()
        assert published.filter(pk=stored.pk).exists() is (name == "publish")
        body = next(b for e, _meta, b in POST_TYPES.values() if e == entity_type)
        if body:
            text = getattr(stored, body)
            # Not stored in clear unless the connector says so (it does not by default).
            assert ("Members-only body text." in text) is (name != "protected"), (entity_type, name)

    draft = record(Notification, posts["notification", "draft"])
    assert draft.audience == "all" and not draft.is_sendable
    sendable = set(Notification.objects.sendable().values_list("external_id", flat=True))
    assert str(posts["notification", "publish"]) in sendable
    assert sendable.isdisjoint(
        str(posts["notification", name]) for name in STATUSES if name != "publish"
    )


def test_a_user_without_a_role_is_stored_without_membership(real_wp, connector):
    user = real_wp.create_user("no.role.user", role="")
    try:
        assert real_wp.php(f"<?php echo wp_json_encode( get_userdata( {user} )->roles );") == []
        sync(connector)
        member = record(Member, user)
        assert member.membership_status == ""  # §10: no membership, not "inactive"
        assert member.get_membership_status_display() == "No membership"
    finally:
        real_wp.php(
            f"<?php require_once ABSPATH . 'wp-admin/includes/user.php'; wp_delete_user( {user} );"
        )


def test_reconciliation_finds_no_drift_after_incrementals_and_repairs_a_direct_sql_change(
    real_wp, connector, created, alice_client
):
    post = created(post_title="Quietly rewritten", post_content="<p>Original text.</p>")
    # The newest article, edited normally: the incremental cursor stays on it, far past
    # `post` (which is not re-read for the cursor's overlap).
    newest = created(post_title="Edited normally", backdate=0)
    sync(connector)
    real_wp.update_post(newest, post_title="Edited normally, again")
    incremental = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert entry(incremental, "article", newest).operation == "UPDATE"

    clean = sync(connector, SyncJob.Kind.RECONCILE)
    assert clean.drift == 0, [
        (e.entity_type, e.external_id, e.operation)
        for e in clean.log_entries.exclude(operation="SKIP")
    ]

    # Behind the plugin's back: no hook runs, post_modified_gmt does not move.
    real_wp.php(
        f"""<?php
        global $wpdb;
        $wpdb->update(
            $wpdb->posts,
            array( 'post_content' => '<p>Changed by a direct SQL UPDATE.</p>' ),
            array( 'ID' => {post} )
        );
        clean_post_cache( {post} );"""
    )
    missed = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert "Original text." in record(Article, post).content
    assert missed.stats["article"]["updated"] == 0

    job = sync(connector, SyncJob.Kind.RECONCILE)

    assert job.drift == 1
    log = entry(job, "article", post)
    assert (log.operation, log.status) == ("UPDATE", "SUCCESS")
    assert "Missed by the incremental syncs (drift)" in log.error
    assert "Changed by a direct SQL UPDATE." in record(Article, post).content
    page = alice_client.get(reverse("connectors:detail", args=["acme", connector.pk]))
    assert "1 change missed by incremental syncs" in page.content.decode()
    assert sync(connector, SyncJob.Kind.RECONCILE).drift == 0


class EditedInWordPressBeforeThePush:
    """The real client, except that an editor saves the post in WordPress just before the
    first PUT arrives (after the incremental read its pages)."""

    def __init__(self, client, real_wp, post):
        self.client, self.real_wp, self.post = client, real_wp, post
        self.puts = 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def push_record(self, entity_type, id, fields, **options):
        self.puts += 1
        if self.puts == 1:
            self.real_wp.update_post(self.post, post_title="Saved in WordPress meanwhile")
        return self.client.push_record(entity_type, id, fields, **options)


def test_a_push_answered_409_is_settled_and_not_pushed_again(real_wp, api, connector, created):
    """The plugin's 409 carries the post as it is now: newer than the platform edit, it is
    stored, the conflict counted, and the next incrementals push nothing (they used to push
    the stale edit, and get 409, every time)."""
    from django.utils import timezone

    from connectors.models import Connector
    from connectors.wordpress_client import client_for
    from syncjobs import services
    from syncjobs.runner import run_job

    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    post = created(post_title="Pushed into a conflict", post_content="<p>Body</p>")
    created(post_title="Newest article", backdate=0)  # keeps the cursor past `post`
    sync(connector)
    edited_at = timezone.now()
    Article.objects.filter(external_id=str(post)).update(
        title="Edited on the platform", platform_modified_at=edited_at
    )
    # WordPress stamps whole seconds: its edit must fall in a later second to be newer.
    wait_for_the_next_wordpress_second(api, contract.format_gmt(edited_at))

    job = services.start_sync(connector, SyncJob.Kind.INCREMENTAL)
    with client_for(connector) as client:
        job = run_job(job.pk, source=EditedInWordPressBeforeThePush(client, real_wp, post))

    assert job.status == SyncJob.Status.COMPLETED, job.error
    log = entry(job, "article", post)
    assert (log.operation, log.status) == ("UPDATE", "SUCCESS"), log.error
    assert log.error.startswith("Conflict: WordPress refused the push (409)")
    assert job.stats["article"]["conflicts"] == 1 and job.stats["article"]["push_failed"] == 0
    stored = record(Article, post)
    assert stored.title == "Saved in WordPress meanwhile" and stored.platform_modified_at is None
    assert real_wp.post_field(post, "post_title") == "Saved in WordPress meanwhile"
    for _ in range(2):
        again = sync(connector, SyncJob.Kind.INCREMENTAL)
        assert not again.log_entries.filter(operation="SYNC").exists()
        assert again.totals().get("push_failed", 0) == 0
