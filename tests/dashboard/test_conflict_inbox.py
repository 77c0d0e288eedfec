"""The conflict inbox page: a real conflict met by a sync against the simulator, its count on
the Overview, its field-level diff, one answer at a time or for a selection, resolved once;
POST only with CSRF, and another organisation's inbox or conflict is a 404."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from records.models import Article
from syncjobs import conflicts, services
from syncjobs.models import ConflictResolution, SyncJob
from syncjobs.runner import run_job
from tests.conftest import make_connector
from tests.engine.conftest import SIM_KEY, site  # noqa: F401  (a fixture)

from .test_actions import messages_of


def make_conflicts(org, site, server, n=2):  # noqa: F811
    """A connector on the simulator with `n` articles edited in WordPress and then on the
    platform: the incremental sync logs a CONFLICT for each (platform wins, import only)."""
    connector = make_connector(
        org, name="Conflict site", site_url=server.url, api_key=SIM_KEY, entity_types=["article"]
    )
    run_job(services.start_sync(connector, SyncJob.Kind.FULL).pk)
    ids = [i for i in site.ids("article") if i not in site.bad_ids("article")][:n]
    site.edit("article", ids=ids)
    Article.objects.filter(external_id__in=[str(i) for i in ids]).update(
        title="Edited on the platform", platform_modified_at=timezone.now() + timedelta(seconds=5)
    )
    run_job(services.start_sync(connector, SyncJob.Kind.INCREMENTAL).pk)
    return connector, ids


@pytest.mark.django_db
def test_inbox_shows_the_diff_and_answers_once(org_a, alice_client, site, server):  # noqa: F811
    connector, ids = make_conflicts(org_a, site, server)
    overview = alice_client.get(connector.get_absolute_url()).text
    assert "2 conflicts to resolve" in overview and "Open the conflict inbox" in overview
    url = reverse("connectors:conflicts", args=["acme", connector.pk])
    page = alice_client.get(url).text
    assert "Conflict inbox (2)" in page
    assert "Edited on the platform" in page  # platform side of the diff
    assert site.record("article", ids[0])["title"] in page  # WordPress side

    rows = list(conflicts.unresolved(connector).order_by("id"))
    response = alice_client.post(url, {"single": f"dismiss:{rows[0].pk}"})
    assert messages_of(response) == ["1 conflict resolved: dismissed."]
    again = alice_client.post(url, {"single": f"take:{rows[0].pk}"})
    assert messages_of(again)[-1] == (
        f"The conflict on article {rows[0].external_id} was already resolved by alice (dismissed)."
    )
    assert not SyncJob.objects.filter(status="PENDING").exists()  # the refusal started nothing
    assert "1 conflict to resolve" in alice_client.get(connector.get_absolute_url()).text

    # Bulk: the ticked selection, taken from WordPress in one job.
    response = alice_client.post(url, {"action": "take", "conflict": [rows[1].pk]})
    job = SyncJob.objects.get(status="PENDING")
    assert messages_of(response) == [
        f"1 conflict resolved: took wordpress's version. Job #{job.pk} carries it out."
    ]
    assert "Conflict inbox (0)" in alice_client.get(url).text
    assert "Open the conflict inbox" not in alice_client.get(connector.get_absolute_url()).text
    events = AuditEvent.objects.filter(action=AuditEvent.Action.UPDATED, actor__username="alice")
    assert events.count() == 2


@pytest.mark.django_db
def test_inbox_is_post_only_for_answers_csrf_protected_and_scoped(
    org_a,
    alice,
    bob_client,
    connector_b,
    site,  # noqa: F811
    server,
):
    connector, _ids = make_conflicts(org_a, site, server, n=1)
    (row,) = conflicts.unresolved(connector)
    url = reverse("connectors:conflicts", args=["acme", connector.pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(url, {"single": f"dismiss:{row.pk}"}).status_code == 403
    relaxed = Client()
    relaxed.force_login(alice)
    assert relaxed.put(url).status_code == 405
    assert bob_client.get(url).status_code == 404
    assert bob_client.post(url, {"single": f"dismiss:{row.pk}"}).status_code == 404
    # Alice's conflict id through Bob's own connector: not his, a 404 too.
    own = reverse("connectors:conflicts", args=[connector_b.organisation.slug, connector_b.pk])
    assert bob_client.post(own, {"single": f"dismiss:{row.pk}"}).status_code == 404
    # Hostile ids: a clear message, nothing answered.
    for bad in (
        {"single": "dismiss:²"},
        {"single": "keep:"},
        {"action": "take", "conflict": "9" * 30},
    ):
        response = relaxed.post(url, bad)
        assert messages_of(response)[-1] == (
            "Tick at least one conflict and choose what to do with it."
        )
    assert not ConflictResolution.objects.exists()


@pytest.mark.django_db
def test_inbox_lists_conflicts_when_wordpress_cannot_be_asked(
    org_a,
    alice_client,
    site,  # noqa: F811
    server,
):
    connector, ids = make_conflicts(org_a, site, server)
    connector.site_url = "http://127.0.0.1:9"  # nothing listens there: connection refused
    connector.save()
    url = reverse("connectors:conflicts", args=["acme", connector.pk])
    page = alice_client.get(url).text
    assert "Conflict inbox (2)" in page
    assert page.count("WordPress could not be asked") == 2  # said for each conflict
    # Dismissed all the same, and told that it cannot be remembered for that version.
    rows = list(conflicts.unresolved(connector).order_by("id"))
    said = messages_of(alice_client.post(url, {"single": f"dismiss:{rows[0].pk}"}))
    assert said[0].startswith("WordPress could not be asked")
    assert said[0].endswith(
        "The answer is recorded, but without the WordPress version it was about: the next "
        "full sync raises the conflict again."
    )
    assert said[1] == "1 conflict resolved: dismissed."
    for article_id in ids:
        assert f"Conflict on article {article_id}" in page
