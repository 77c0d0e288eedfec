"""Publish status, password protection and membership, end to end against the simulator:
what WordPress does not publish is stored as such and never counts as published."""

import pytest
from django.urls import reverse

from connectors.wordpress import contract
from records.models import RECORD_MODELS, Member, Notification, PublishStatus

from .conftest import log_for

POST_TYPES = [t for t in contract.ENTITY_TYPES if t != "member"]
BODY = {
    "article": "content",
    "event": "description",
    "conference": "description",
    "company": "description",
    "notification": "body",
}


def _good(site, entity_type):
    return [i for i in site.ids(entity_type) if i not in site.bad_ids(entity_type)]


@pytest.mark.parametrize("entity_type", POST_TYPES)
def test_every_post_type_is_stored_with_its_status_and_only_publish_counts_as_published(
    sync, site, connector, entity_type
):
    ids = _good(site, entity_type)[:5]
    statuses = ["publish", "future", "draft", "pending", "private"]
    for record_id, status in zip(ids, statuses, strict=True):
        site.update(entity_type, record_id, status=status, password_protected=False)
    site.update(entity_type, _good(site, entity_type)[5], status="publish", password_protected=True)

    sync(connector)

    model = RECORD_MODELS[entity_type]
    stored = {r.external_id: r for r in model.objects.filter(connector=connector)}
    for record_id, status in zip(ids, statuses, strict=True):
        assert stored[str(record_id)].status == status
    published = set(
        model.objects.filter(connector=connector).published().values_list("pk", flat=True)
    )
    for record in stored.values():
        served = site.record(entity_type, int(record.external_id))
        assert record.status == served["status"]
        assert record.password_protected is served["password_protected"]
        expected = served["status"] == "publish" and not served["password_protected"]
        assert (record.pk in published) is expected is record.is_published


def test_a_draft_notification_is_never_sendable(sync, site, connector):
    draft, scheduled, published = _good(site, "notification")[:3]
    site.update("notification", draft, status="draft", audience="all", password_protected=False)
    site.update("notification", scheduled, status="future", password_protected=False)
    site.update("notification", published, status="publish", password_protected=False)
    sync(connector)

    sendable = set(Notification.objects.sendable().values_list("external_id", flat=True))
    assert str(published) in sendable
    assert str(draft) not in sendable and str(scheduled) not in sendable
    stored = Notification.objects.get(external_id=str(draft))
    # Stored with its audience and send time, as WordPress has it: only not sendable.
    assert stored.audience == "all" and stored.status == PublishStatus.DRAFT
    assert not stored.is_sendable

    site.update("notification", draft, status="publish")  # published in WordPress later
    sync(connector, "INCREMENTAL")
    assert Notification.objects.get(external_id=str(draft)).is_sendable


@pytest.mark.parametrize("entity_type", sorted(BODY))
def test_protected_content_is_not_stored_unless_the_connector_says_so(
    sync, site, connector, entity_type, alice_client
):
    record_id = _good(site, entity_type)[0]
    field = BODY[entity_type]
    site.update(entity_type, record_id, status="publish", password_protected=True)
    site.update(entity_type, record_id, **{field: "<p>Members-only secret</p>"})

    job = sync(connector)

    model = RECORD_MODELS[entity_type]
    record = model.objects.get(connector=connector, external_id=str(record_id))
    assert record.password_protected and record.status == "publish"
    assert getattr(record, field) == "" and not record.is_published
    assert log_for(job, entity_type, record_id).status == "SUCCESS"
    url = reverse("records:detail", args=["acme", entity_type, record.pk])
    page = alice_client.get(url).content.decode()
    assert "Members-only secret" not in page
    # Nor in the card comparing the platform with what WordPress serves now.
    card = alice_client.get(f"{url}?part=values", headers={"HX-Request": "true"}).text
    assert "table-values" in card and "Members-only secret" not in card
    assert "Not stored: the post is password-protected in WordPress." in page
    assert "Password-protected in WordPress: not shown as published" in page

    connector.store_protected_content = True
    connector.save()
    again = sync(connector)  # a full sync applies the setting to every record
    record.refresh_from_db()
    assert "Members-only secret" in getattr(record, field)
    assert log_for(again, entity_type, record_id).operation == "UPDATE"


def test_record_page_says_a_draft_is_not_published(sync, site, connector, alice_client):
    record_id = _good(site, "article")[0]
    site.update("article", record_id, status="draft", password_protected=False)
    sync(connector)
    record = RECORD_MODELS["article"].objects.get(external_id=str(record_id))
    page = alice_client.get(reverse("records:detail", args=["acme", "article", record.pk]))
    assert "Draft in WordPress: not published" in page.content.decode()


def test_users_without_a_role_have_no_membership(sync, site, connector):
    no_role, customer, member = [i for i in site.ids("member") if i not in site.bad_ids("member")][
        :3
    ]
    site.update("member", no_role, roles=[])
    site.update("member", customer, roles=["customer"])
    site.update("member", member, roles=["member"])

    sync(connector)

    statuses = dict(
        Member.objects.filter(connector=connector).values_list("external_id", "membership_status")
    )
    assert statuses[str(no_role)] == statuses[str(customer)] == ""
    assert statuses[str(member)] == "active"
    assert "inactive" not in statuses.values()
    assert Member.objects.get(external_id=str(no_role)).get_membership_status_display() == (
        "No membership"
    )


def test_overview_counts_the_records_that_are_not_published(sync, site, connector, alice_client):
    sync(connector)
    for entity_type in ("article", "notification"):
        model = RECORD_MODELS[entity_type]
        live = model.objects.filter(connector=connector, archived_at=None)
        unpublished = live.count() - live.published().count()
        assert unpublished > 0
        page = alice_client.get(reverse("connectors:detail", args=["acme", connector.pk]))
        assert f"{unpublished} not published" in page.content.decode()
