"""Platform → Connectors health for super admins: failing now by cause, stale, auto-paused,
each count a link to the table filtered to exactly those connectors."""

import re

from django.urls import reverse
from django.utils import timezone

from connectors.models import Connector
from notifications.models import ConnectorHealth
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import set_key

PAGE = reverse("platform_admin:connectors")


def flat(response):
    return re.sub(r"\s+", " ", response.content.decode())


def names(html):
    return sorted(re.findall(r'<th scope="row"[^>]*><a href="[^"]+">([^<]+)</a>', html))


def unhealthy(organisation, name, status=Connector.Status.ERROR, **health):
    connector = make_connector(organisation, name=name, status=status)
    ConnectorHealth.objects.create(connector=connector, **health)
    return connector


def test_health_counts_group_failures_by_cause_and_link_to_the_filtered_table(
    root_client, org_a, org_b
):
    now = timezone.now()
    unhealthy(org_a, "Key A", failing_since=now, failure_cause="wrong_key")
    unhealthy(org_b, "Key B", failing_since=now, failure_cause="wrong_key")
    unhealthy(org_b, "Down B", failing_since=now, failure_cause="unreachable")
    unhealthy(org_a, "Stale A", status=Connector.Status.ACTIVE, stale_since=now)
    unhealthy(
        org_a,
        "Paused A",
        status=Connector.Status.PAUSED,
        auto_paused_at=now,
        failing_since=now,
        failure_cause="plugin_missing",
    )
    make_connector(org_a, name="Fine A")
    # Recovered long ago: no longer failing, not counted.
    unhealthy(org_b, "Fine B", status=Connector.Status.ACTIVE)

    page = flat(root_client.get(PAGE))
    assert (
        '<a class="stat-value" href="?health=failing">4</a> <span class="stat-label">Failing now'
        in page
    )
    assert '<a class="stat-value" href="?health=stale">1</a>' in page
    assert '<a class="stat-value" href="?health=auto_paused">1</a>' in page
    assert (
        '<li data-cause="wrong_key"><a href="?health=wrong_key">2</a> Wrong sync key</li>' in page
    )
    assert '<a href="?health=unreachable">1</a> Site unreachable' in page
    assert '<a href="?health=plugin_missing">1</a> Plugin missing or disabled' in page

    assert names(flat(root_client.get(PAGE + "?health=wrong_key"))) == ["Key A", "Key B"]
    assert names(flat(root_client.get(PAGE + "?health=failing"))) == [
        "Down B",
        "Key A",
        "Key B",
        "Paused A",
    ]
    assert names(flat(root_client.get(PAGE + "?health=stale"))) == ["Stale A"]
    assert names(flat(root_client.get(PAGE + "?health=auto_paused"))) == ["Paused A"]
    # An unknown value is reported and ignored, like the other filters.
    bogus = flat(root_client.get(PAGE + "?health=everything"))
    assert "This filter was ignored." in bogus


def test_a_real_wrong_key_failure_is_counted_as_wrong_key(
    root_client, connector, smtp, celery_eager, run
):
    set_key(connector, "wrong-key-" + "z" * 30)
    assert run(connector).status == SyncJob.Status.FAILED
    page = flat(root_client.get(PAGE))
    assert '<a href="?health=wrong_key">1</a> Wrong sync key' in page


def test_organisation_admins_do_not_get_the_platform_page(alice_client):
    assert alice_client.get(PAGE + "?health=failing").status_code == 404


def test_the_platform_table_says_completed_with_failures(root_client, connector_a):
    from tests.dashboard.conftest import make_job

    make_job(connector_a, stats={"member": {"processed": 50, "failed": 2}})
    page = flat(root_client.get(PAGE))
    assert '<span class="badge badge-pending badge-wrap">Completed with 2 failures</span>' in page


def test_the_platform_table_tells_the_last_attempt_from_the_last_success(
    root_client, connector_a, connector_b
):
    from datetime import timedelta

    from tests.dashboard.conftest import make_job

    three_hours_ago = timezone.now() - timedelta(hours=3)
    make_job(connector_a, created_at=three_hours_ago, finished_at=three_hours_ago)
    make_job(connector_a, dry_run=True)  # a preview wrote nothing: no successful sync
    make_job(connector_a, status=SyncJob.Status.FAILED, error="The key was refused.")
    make_job(connector_b, status=SyncJob.Status.FAILED)

    page = flat(root_client.get(PAGE))
    assert re.search(r'sort=last_sync">Last attempt</a>', page)
    cells = re.findall(r'data-label="Last attempt:">(.*?)</td>', page)
    assert len(cells) == 2
    acme, globex = cells  # sorted by organisation
    assert '<span class="badge badge-failed">Failed</span>' in acme
    assert re.search(r"Last success: <time [^>]+>3 hours ago</time>", acme)
    assert "Last success: never" in globex

    # A clean last attempt is the last success: said once.
    make_job(connector_b)
    globex = re.findall(r'data-label="Last attempt:">(.*?)</td>', flat(root_client.get(PAGE)))[1]
    assert "Last success" not in globex


def test_the_platform_table_shows_an_error_connectors_retry_under_way(root_client, connector_a):
    from tests.dashboard.conftest import make_job

    Connector.objects.filter(pk=connector_a.pk).update(
        status=Connector.Status.ERROR, status_message="Last sync (job #1) failed: key refused."
    )
    make_job(connector_a, status=SyncJob.Status.FAILED)
    page = flat(root_client.get(PAGE))
    assert '<div class="muted small">Last sync (job #1) failed: key refused.</div>' in page
    assert "Retrying" not in page

    make_job(connector_a, status=SyncJob.Status.RUNNING, finished_at=None)
    page = flat(root_client.get(PAGE))
    assert (
        '<div class="muted small"><strong>Retrying:</strong> a new sync is under way. '
        "Last sync (job #1) failed: key refused.</div>"
    ) in page


def test_the_health_card_costs_the_same_queries_at_any_fleet_size(root_client, org_a, org_b):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries():
        cache.clear()  # the charts' cached fragment: count the cold page each time
        with CaptureQueriesContext(connection) as captured:
            assert root_client.get(PAGE).status_code == 200
        return len(captured.captured_queries)

    now = timezone.now()
    unhealthy(org_a, "One", failing_since=now, failure_cause="wrong_key")
    few = queries()
    for i in range(12):
        cause = ConnectorHealth.Cause.values[i % 5]
        unhealthy(org_b, f"Many {i}", failing_since=now, failure_cause=cause, stale_since=now)
    assert queries() == few
