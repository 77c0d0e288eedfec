"""The repair tools' buttons: where they show, what they start, what they refuse; POST only,
CSRF-protected, audited; the record page's trace and its platform / WordPress values."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from records.models import Member
from syncjobs import services
from syncjobs.models import SyncJob
from syncjobs.runner import run_job
from tests.conftest import make_connector
from tests.engine.conftest import SIM_KEY, site  # noqa: F401  (a fixture)

from .conftest import make_job, make_log
from .test_actions import messages_of


def repair_urls(connector, job):
    org, c = connector.organisation.slug, connector.pk
    return [
        reverse("syncjobs:retry_failed", args=[org, c, job.pk]),
        reverse("connectors:preview", args=[org, c]),
        reverse("connectors:resync_type", args=[org, c]),
        reverse("connectors:sync_record", args=[org, c]),
    ]


def test_retry_button_shows_with_failed_rows_and_starts_an_audited_retry(alice_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 2, entity_type="member", status="FAILED", error="member 1000: email is null")
    clean = make_job(connector_a)
    make_log(clean, 3)
    page = alice_client.get(job.get_absolute_url())
    assert "Retry failed records" in page.text
    assert "Retry failed records" not in alice_client.get(clean.get_absolute_url()).text

    response = alice_client.post(
        reverse("syncjobs:retry_failed", args=["acme", connector_a.pk, job.pk])
    )

    retry = SyncJob.objects.get(connector=connector_a, status="PENDING")
    assert response.status_code == 302 and response.url == retry.get_absolute_url()
    assert retry.scope == {"records": {"member": ["1000", "1001"]}, "retry_of": job.pk}
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC_TRIGGERED)
    assert event.actor.username == "alice"
    assert event.changes["what"] == f"Retry of job #{job.pk}'s failed records"
    page = alice_client.get(retry.get_absolute_url())
    assert f"Retry of job #{job.pk}&#x27;s failed records #{retry.pk}" in page.text


def test_preview_and_resync_buttons_on_the_overview(alice_client, connector_a):
    overview = alice_client.get(connector_a.get_absolute_url()).text
    assert "Preview sync" in overview and overview.count("Re-sync this type") == 3

    alice_client.post(
        reverse("connectors:resync_type", args=["acme", connector_a.pk]), {"entity_type": "company"}
    )
    assert not SyncJob.objects.exists()  # company is not enabled on connector_a
    response = alice_client.post(
        reverse("connectors:resync_type", args=["acme", connector_a.pk]),
        {"entity_type": "company"},
        follow=True,
    )
    assert "Company is not enabled for this connector" in response.text

    alice_client.post(
        reverse("connectors:resync_type", args=["acme", connector_a.pk]), {"entity_type": "member"}
    )
    job = SyncJob.objects.get()
    assert job.scope == {"entity_types": ["member"]}
    job.status = "CANCELLED"
    job.save()

    response = alice_client.post(reverse("connectors:preview", args=["acme", connector_a.pk]))
    preview = SyncJob.objects.get(dry_run=True)
    assert response.url == preview.get_absolute_url()
    # A second click while it is pending: refused, nothing more queued.
    again = alice_client.post(reverse("connectors:preview", args=["acme", connector_a.pk]))
    assert any("A sync is already running" in m for m in messages_of(again))
    assert SyncJob.objects.filter(dry_run=True).count() == 1


def test_preview_job_page_shows_the_counts_and_first_failures(alice_client, connector_a):
    job = make_job(
        connector_a,
        dry_run=True,
        stats={"member": {"total": 5, "processed": 5, "created": 4, "failed": 1}},
        preview_failures={"member": [["77", "member 77: email is null"]]},
    )
    page = alice_client.get(job.get_absolute_url()).text
    assert "Preview of a full sync (nothing written)" in page
    assert "Preview: what a full sync would do" in page
    assert "member 77: email is null" in page
    assert "Retry failed records" not in page


def test_sync_record_refuses_a_bad_id_and_goes_back(alice_client, connector_a):
    response = alice_client.post(
        reverse("connectors:sync_record", args=["acme", connector_a.pk]),
        {"entity_type": "member", "wordpress_id": "12x", "next": "/o/acme/records/x/"},
    )
    assert response.url == "/o/acme/records/x/"
    assert messages_of(response) == ["'12x' is not a WordPress id: a positive whole number is."]
    response = alice_client.post(
        reverse("connectors:sync_record", args=["acme", connector_a.pk]),
        {"entity_type": "member", "wordpress_id": "5", "next": "https://evil.example/"},
    )
    job = SyncJob.objects.get()
    assert response.url == job.get_absolute_url()
    assert job.scope == {"records": {"member": ["5"]}}


def test_repair_actions_are_post_only_csrf_protected_and_scoped(alice, bob_client, connector_a):
    job = make_job(connector_a)
    make_log(job, 1, status="FAILED")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    for url in repair_urls(connector_a, job):
        assert client.get(url).status_code == 405, url
        assert client.post(url, {"entity_type": "member", "wordpress_id": "1"}).status_code == 403
        assert (
            bob_client.post(url, {"entity_type": "member", "wordpress_id": "1"}).status_code == 404
        )
    assert SyncJob.objects.count() == 1


@pytest.mark.django_db
def test_record_page_traces_the_record_and_compares_it_with_wordpress(
    org_a,
    alice_client,
    site,  # noqa: F811
    server,
):
    connector = make_connector(
        org_a, name="Trace site", site_url=server.url, api_key=SIM_KEY, entity_types=["member"]
    )
    member_id = next(i for i in site.ids("member") if i not in site.bad_ids("member"))
    first = run_job(services.start_sync(connector, SyncJob.Kind.FULL).pk)
    site.tamper("member", member_id, first_name="Changed in WordPress")
    record = Member.objects.get(external_id=str(member_id))
    url = reverse("records:detail", args=["acme", "member", record.pk])

    page = alice_client.get(url).text
    # The page does not wait for WordPress: the comparison card loads itself.
    assert "Changed in WordPress" not in page
    assert f'hx-get="{url}?part=values" hx-trigger="load"' in page
    assert "Sync this record" in page
    card = alice_client.get(f"{url}?part=values", headers={"HX-Request": "true"}).text
    assert "Changed in WordPress" in card  # WordPress's side
    assert "differs" in card
    assert "<html" not in card and "hx-get" not in card  # the card alone, loaded once

    response = alice_client.post(
        reverse("connectors:sync_record", args=["acme", connector.pk]),
        {"entity_type": "member", "wordpress_id": str(member_id), "next": url},
    )
    one = SyncJob.objects.get(status="PENDING")
    assert response.url == one.get_absolute_url()
    run_job(one.pk)
    page = alice_client.get(url).text
    # Newest first: the one-record job, then the full sync.
    assert page.index(f"Sync of member {member_id} #{one.pk}") < page.index(
        f"Full sync #{first.pk}"
    )
    card = alice_client.get(f"{url}?part=values", headers={"HX-Request": "true"}).text
    assert "Changed in WordPress" in card and "differs" not in card


def test_held_deletions_shown_on_the_overview_and_decided_once(
    alice_client, bob_client, connector_a
):
    from syncjobs.models import HeldDeletion
    from tests.reliability.conftest import make_record

    job = make_job(connector_a, error="2 deletions held for review")
    for external_id in ("41", "42"):
        make_record("member", connector_a, external_id=external_id)
    held = HeldDeletion.objects.create(
        connector=connector_a,
        job=job,
        entity_type="member",
        external_ids=["41", "42"],
        live_count=3,
    )
    assert "2 deletions held for review" in alice_client.get(connector_a.get_absolute_url()).text
    assert "Review them" in alice_client.get(job.get_absolute_url()).text
    url = reverse("connectors:held_deletions", args=["acme", connector_a.pk])
    page = alice_client.get(url).text
    assert "Approve: archive 2" in page and "2 of 3 records" in page

    assert bob_client.post(url, {"held": held.pk, "decision": "approve"}).status_code == 404
    response = alice_client.post(url, {"held": held.pk, "decision": "approve"})
    assert messages_of(response) == ["2 member records archived."]
    assert Member.objects.filter(archived_at__isnull=False).count() == 2
    response = alice_client.post(url, {"held": held.pk, "decision": "discard"})
    assert "already decided by alice (approved: archived)" in messages_of(response)[-1]
    assert "held for review" not in alice_client.get(connector_a.get_absolute_url()).text


def test_settings_offer_a_resync_per_enabled_type(alice_client, connector_a):
    url = reverse("connectors:settings", args=["acme", connector_a.pk])
    page = alice_client.get(url).text
    for entity_type in connector_a.enabled_entity_types():
        assert f'value="{entity_type}">Re-sync {entity_type}</button>' in page
    # The button submits the settings form to the re-sync URL (formaction): only the type counts.
    alice_client.post(
        reverse("connectors:resync_type", args=["acme", connector_a.pk]),
        {"name": "Ignored", "entity_type": "event"},
    )
    assert SyncJob.objects.get().scope == {"entity_types": ["event"]}
    connector_a.refresh_from_db()
    assert connector_a.name != "Ignored"


def test_every_repair_url_is_a_404_for_another_organisations_objects(
    alice_client, bob_client, connector_a, connector_b
):
    """Through Alice's URLs (Bob is no member of Acme), and with Alice's ids through Bob's own
    connector's URLs: a 404 each time, and nothing started, decided or answered."""
    from syncjobs.models import HeldDeletion
    from tests.reliability.conftest import make_record

    job = make_job(connector_a)
    make_log(job, 1, entity_type="member", status="FAILED")
    record = make_record("member", connector_a, external_id="41")
    held = HeldDeletion.objects.create(
        connector=connector_a, job=job, entity_type="member", external_ids=["41"]
    )
    acme, a = "acme", connector_a.pk
    pages = [
        reverse("connectors:held_deletions", args=[acme, a]),
        reverse("connectors:conflicts", args=[acme, a]),
        reverse("records:detail", args=[acme, "member", record.pk]),
    ]
    for url in pages:
        assert alice_client.get(url).status_code == 200, url
        assert bob_client.get(url).status_code == 404, url
    data = {"entity_type": "member", "wordpress_id": "41", "held": held.pk, "decision": "approve"}
    for url in [*repair_urls(connector_a, job), *pages[:2]]:
        assert bob_client.post(url, data).status_code == 404, url

    globex, b = connector_b.organisation.slug, connector_b.pk
    own_retry = reverse("syncjobs:retry_failed", args=[globex, b, job.pk])
    assert bob_client.post(own_retry).status_code == 404
    own_held = reverse("connectors:held_deletions", args=[globex, b])
    assert bob_client.post(own_held, {"held": held.pk, "decision": "approve"}).status_code == 404
    own_record = reverse("records:detail", args=[globex, "member", record.pk])
    assert bob_client.get(own_record).status_code == 404

    assert SyncJob.objects.count() == 1
    held.refresh_from_db()
    assert held.decision == "" and Member.objects.get(pk=record.pk).archived_at is None
