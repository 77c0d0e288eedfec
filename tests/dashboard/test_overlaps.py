"""Two connectors of one organisation syncing the same type from the same site import the same
records twice (the second fails on duplicate slugs): said on create and in Settings."""

from django.urls import reverse

from connectors.models import Connector
from tests.conftest import make_connector

KEY = "sync-key-0123456789abcdef0123456789"


def test_creating_an_overlapping_connector_warns_and_explains(alice_client, org_a, org_b):
    make_connector(
        org_a,
        name="Acme main",
        site_url="https://wp.example.org",
        entity_types=["article", "member", "event"],
    )
    make_connector(
        org_b, name="Globex", site_url="https://wp.example.org", entity_types=["article"]
    )  # another organisation: no clash
    response = alice_client.post(
        reverse("connectors:create", args=["acme"]),
        {
            "name": "Acme events",
            "site_url": "https://wp.example.org/",
            "api_key": KEY,
            "entity_types": ["event", "conference", "article"],
            "frequency": "1h",
        },
        follow=True,
    )
    assert Connector.objects.filter(name="Acme events").exists()
    html = response.content.decode()
    assert "“Acme main” already syncs Article, Event from https://wp.example.org" in html
    assert "slug is unique" in html and "Globex" not in html


def test_settings_warn_while_the_overlap_lasts(alice_client, org_a):
    main = make_connector(org_a, name="Acme main", entity_types=["article", "member"])
    second = make_connector(org_a, name="Acme members", entity_types=["member"])
    other_site = make_connector(
        org_a, name="Elsewhere", site_url="https://other.example.org", entity_types=["member"]
    )
    url = reverse("connectors:settings", args=["acme", second.pk])
    html = alice_client.get(url).text
    assert "“Acme main” already syncs Member from" in html and "Elsewhere" not in html
    assert (
        "“Acme members” already syncs Member"
        in alice_client.get(reverse("connectors:settings", args=["acme", main.pk])).text
    )
    Connector.objects.filter(pk=main.pk).update(entity_types=["article"])
    assert "already syncs" not in alice_client.get(url).text
    assert (
        "already syncs"
        not in alice_client.get(reverse("connectors:settings", args=["acme", other_site.pk])).text
    )
