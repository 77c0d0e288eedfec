"""Push on a real WordPress (contract §15): the plugin subscribes the platform, answers the
connection test's round trip, and after a real edit sends one signed POST once the request
ended (the shutdown hook), however many records the request changed; the platform's
endpoint accepts it and the pushed incremental sync brings the edit."""

import pytest

from connectors.wordpress_client import client_for
from push import subscriptions
from push.models import PushChannel
from push.tasks import start_pushed_sync
from records.models import Article
from syncjobs.models import SyncJob
from syncjobs.runner import run_job
from syncjobs.services import start_sync
from tests.conftest import make_connector
from tests.waiting import wait_until

pytestmark = [pytest.mark.wordpress, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def connector(org_a, real_wp, live_server, settings, monkeypatch):
    # No Celery worker here: the test runs the jobs itself.
    monkeypatch.setattr("syncjobs.tasks.run_sync_job.delay", lambda *args, **kwargs: None)
    monkeypatch.setattr("push.tasks.run_pushed_sync.apply_async", lambda *a, **kw: None)
    settings.PLATFORM_URL = live_server.url
    yield make_connector(
        org_a,
        name="Real WordPress",
        site_url=real_wp.url,
        api_key=real_wp.key,
        entity_types=["article"],
    )
    # Later test modules must not push to this test's server, gone by then.
    real_wp.php("<?php delete_option( 'association_app_push_subscriptions' );")


def wait_for_push(channel, timeout=10.0) -> PushChannel:
    """The channel once a push newer than `channel`'s last one was accepted."""
    return wait_until(
        lambda: (
            PushChannel.objects.filter(pk=channel.pk)
            .exclude(last_received_at=channel.last_received_at)
            .first()
        ),
        timeout=timeout,
        interval=0.1,
        what="WordPress's push to reach the platform",
    )


def test_ping_announces_push_and_the_round_trip_reaches_the_platform(connector, real_wp):
    with client_for(connector) as client:
        assert client.ping().get("push") is True
        result = subscriptions.subscribe(connector, client, test=True)
    assert result == {"supported": True, "subscribed": True, "reachable": True, "error": ""}
    channel = PushChannel.objects.get(connector=connector)
    assert channel.last_received_at is not None and channel.sync_due_at is None  # a test push
    stored = real_wp.php(
        "<?php echo wp_json_encode( get_option( 'association_app_push_subscriptions' ) );"
    )
    assert stored == {subscriptions.push_url(connector): channel.secret}


def test_an_edit_pushes_once_after_the_request_and_the_pushed_sync_brings_it(connector, real_wp):
    first = start_sync(connector, SyncJob.Kind.INITIAL)
    assert run_job(first.pk).status == SyncJob.Status.COMPLETED  # subscribes, then imports
    channel = PushChannel.objects.get(connector=connector)
    assert channel.subscribed_url == subscriptions.push_url(connector)
    post_id = real_wp.create_post(post_title="Before the push", backdate=60)
    channel = wait_for_push(channel)
    assert channel.sync_due_at is not None  # the endpoint scheduled the incremental sync

    # One request editing many records sends one push, not one per record.
    before = channel.window_count
    real_wp.php(
        f"""<?php for ( $i = 0; $i < 20; $i++ ) {{
            wp_update_post( array( 'ID' => {post_id}, 'post_title' => "Pushed edit $i" ) );
        }}"""
    )
    channel = wait_for_push(channel)
    # A marker: a push sent after that request ended, and answered (blocking) before php
    # returns. Had the request pushed once per edit, those pushes, sent before it, would be
    # counted by now; so the count is exactly the request's push plus the marker's.
    url = subscriptions.push_url(connector)
    answer = real_wp.php(
        f"""<?php $secret = AA_Push::subscriptions()['{url}'];
        $r = AA_Push::send( '{url}', $secret, 'changes', true );
        echo wp_json_encode( wp_remote_retrieve_response_code( $r ) );"""
    )
    assert 200 <= answer < 300
    channel = PushChannel.objects.get(pk=channel.pk)
    assert channel.window_count == before + 2

    assert start_pushed_sync(connector.pk).startswith("job ")
    pushed = SyncJob.objects.get(connector=connector, trigger=SyncJob.Trigger.PUSH)
    assert run_job(pushed.pk).status == SyncJob.Status.COMPLETED
    assert Article.objects.get(external_id=str(post_id)).title == "Pushed edit 19"


def test_a_push_with_another_secret_is_refused_by_the_platform(connector, real_wp):
    with client_for(connector) as client:
        subscriptions.subscribe(connector, client)
    # The site is told a wrong secret (as if someone replaced it): its pushes are refused.
    url = subscriptions.push_url(connector)
    real_wp.php(
        f"""<?php update_option( 'association_app_push_subscriptions',
            array( '{url}' => 'not-the-secret' ), false );"""
    )
    answer = real_wp.php(
        f"""<?php $r = AA_Push::send( '{url}', 'not-the-secret', 'changes', true );
        echo wp_json_encode( wp_remote_retrieve_response_code( $r ) );"""
    )
    assert answer == 404
    assert PushChannel.objects.get(connector=connector).sync_due_at is None
