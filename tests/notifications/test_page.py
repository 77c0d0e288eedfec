"""The Notifications page: organisation admins only (another organisation's page is a 404),
CSRF-protected forms that answer htmx with their own section."""

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import (
    Channel,
    Delivery,
    EmailMute,
    Event,
    OrganisationSettings,
    Preference,
    WebhookEndpoint,
)

PAGE = reverse("notifications:settings", args=["acme"])
HTMX = {"HTTP_HX_REQUEST": "true"}


def all_routes(**overrides):
    data = {
        "auto_pause_after_failures": "10",
        "auto_pause_after_hours": "24",
        "failed_records_min": "10",
        "failed_records_percent": "5",
    }
    for event in Event:
        if event != Event.DIGEST:
            for channel in Channel:
                data[f"{event}__{channel}"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_admins_see_the_page_with_every_route_on_by_default(alice_client):
    page = alice_client.get(PAGE).content.decode()
    assert "What to notify" in page
    assert page.count("checked") >= 14  # seven events × two channels
    assert "Notifications are emailed to you at <strong>alice@acme.example</strong>" in page


@pytest.mark.parametrize(
    "path",
    [
        PAGE,
        reverse("notifications:mute", args=["acme"]),
        reverse("notifications:webhook_add", args=["acme"]),
    ],
)
def test_another_organisations_admin_gets_404(bob_client, org_a, path):
    assert bob_client.get(path).status_code == (404 if path == PAGE else 405)
    assert (
        bob_client.post(path, {"url": "https://hooks.example.org/x", "mute": "1"}).status_code
        == 404
    )
    assert not WebhookEndpoint.objects.exists()
    assert not EmailMute.objects.exists()


def test_another_organisations_webhook_cannot_be_deleted(alice_client, bob, org_b):
    endpoint = WebhookEndpoint(organisation=org_b, url="https://hooks.example.org/globex")
    endpoint.set_secret("x")
    endpoint.save()
    url = reverse("notifications:webhook_delete", args=["acme", endpoint.pk])
    assert alice_client.post(url).status_code == 404
    url = reverse("notifications:webhook_delete", args=["globex", endpoint.pk])
    assert alice_client.post(url).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_forms_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("notifications:mute", args=["acme"]), {"mute": "1"})
    assert response.status_code == 403
    assert not EmailMute.objects.exists()


def test_an_admin_mutes_and_unmutes_their_own_email_with_htmx(alice_client, alice, org_a):
    url = reverse("notifications:mute", args=["acme"])
    response = alice_client.post(url, {"mute": "1"}, **HTMX)
    section = response.content.decode()
    assert section.lstrip().startswith('<section id="my-email"')
    assert "Your notification email is <strong>muted</strong>" in section
    assert EmailMute.objects.filter(user=alice, organisation=org_a).exists()
    alice_client.post(url, {"mute": "0"}, **HTMX)
    assert not EmailMute.objects.exists()


def test_saving_routes_digest_and_auto_pause(alice_client, org_a):
    data = all_routes(**{"error__email": None, "daily_digest": "on"})
    data["auto_pause_after_failures"] = "4"
    response = alice_client.post(PAGE, data, **HTMX)
    assert response.status_code == 200
    assert 'id="preferences"' in response.content.decode()
    assert "Saved" in response.content.decode()
    assert Preference.objects.get(event="error", channel="email").enabled is False
    assert Preference.objects.get(event="error", channel="webhook").enabled is True
    org_settings = OrganisationSettings.objects.get(organisation=org_a)
    assert (org_settings.daily_digest, org_settings.auto_pause_after_failures) == (True, 4)
    page = alice_client.get(PAGE).content.decode()
    assert 'name="error__email"' in page and 'id="id_daily_digest" checked' in page


def test_a_bad_threshold_is_refused_with_a_message_and_nothing_saved(alice_client, org_a):
    response = alice_client.post(PAGE, all_routes(auto_pause_after_failures="-3"))
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 0." in response.content.decode()
    assert not OrganisationSettings.objects.exists()
    assert not Preference.objects.exists()


def test_the_failed_records_thresholds_are_the_organisations_own(alice_client, org_a, org_b):
    page = alice_client.get(PAGE).content.decode()
    assert 'name="failed_records_min" value="10"' in page
    assert 'name="failed_records_percent" value="5"' in page
    data = all_routes(failed_records_min="25", failed_records_percent="12")
    assert alice_client.post(PAGE, data, **HTMX).status_code == 200
    saved = OrganisationSettings.objects.get(organisation=org_a)
    assert (saved.failed_records_min, saved.failed_records_percent) == (25, 12)
    assert OrganisationSettings.for_organisation(org_b.pk).failed_records_percent == 5

    refused = alice_client.post(
        PAGE, all_routes(failed_records_percent="101", failed_records_min="0")
    )
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "Ensure this value is less than or equal to 100." in body
    assert "Ensure this value is greater than or equal to 1." in body
    assert OrganisationSettings.objects.get(organisation=org_a).failed_records_percent == 12


def test_adding_a_webhook_shows_its_secret_once(alice_client, org_a, receiver):
    url = reverse("notifications:webhook_add", args=["acme"])
    response = alice_client.post(url, {"url": receiver.url}, **HTMX)
    section = response.content.decode()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == receiver.url
    assert f'<code class="secret">{endpoint.secret}</code>' in section
    assert endpoint.secret not in alice_client.get(PAGE).content.decode()
    assert endpoint.secret not in endpoint.secret_encrypted  # encrypted at rest

    again = alice_client.post(url, {"url": receiver.url}, **HTMX).content.decode()
    assert "This webhook is already registered." in again
    bad = alice_client.post(url, {"url": "ftp://example.org/x"}, **HTMX).content.decode()
    assert "Enter a valid URL." in bad or "Only http" in bad
    assert WebhookEndpoint.objects.count() == 1

    delete = reverse("notifications:webhook_delete", args=["acme", endpoint.pk])
    assert "No webhook yet." in alice_client.post(delete, **HTMX).content.decode()


def test_the_page_lists_what_was_sent_and_what_failed(alice_client, org_a, org_b):
    Delivery.objects.create(
        organisation=org_a,
        event=Event.ERROR,
        channel=Channel.EMAIL,
        recipient="alice@acme.example",
        subject="[Association App] Acme main site: sync failed",
        body="…",
        status=Delivery.Status.SENT,
        result="Accepted",
    )
    Delivery.objects.create(
        organisation=org_a,
        event=Event.ERROR,
        channel=Channel.WEBHOOK,
        recipient="https://hooks.example.org/acme",
        subject="[Association App] Acme main site: sync failed",
        body="…",
        status=Delivery.Status.FAILED,
        result="Attempt 6: The webhook receiver answered HTTP 503 (no body).",
    )
    Delivery.objects.create(
        organisation=org_b,
        event=Event.ERROR,
        channel=Channel.EMAIL,
        recipient="bob@globex.example",
        subject="Globex secret subject",
        body="…",
    )
    page = alice_client.get(PAGE).content.decode()
    assert "Email · alice@acme.example" in page
    assert "Webhook · https://hooks.example.org/acme" in page
    assert "HTTP 503" in page
    assert "Globex secret subject" not in page


def test_the_connector_list_links_to_the_page(alice_client, org_a):
    page = alice_client.get(reverse("connectors:list", args=["acme"])).content.decode()
    assert f'href="{PAGE}"' in page
