"""The New connector flow and the Settings tab: every field validated with a clear message,
the key write-only, every save audited with its field-level diff."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from connectors.models import Connector
from tests.conftest import make_connector

from .conftest import KEY

NEW_KEY = "brand-new-sync-key-9f8e7d6c5b4a"


def create_data(**overrides):
    data = {
        "name": "Main site",
        "site_url": "https://www.example.org/",
        "api_key": "fresh-key-for-main-site-000111",
        "entity_types": ["article", "event"],
        "frequency": "1h",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def post_create(client, **overrides):
    return client.post(reverse("connectors:create", args=["acme"]), create_data(**overrides))


def test_create_connector(alice_client, alice, org_a):
    response = post_create(alice_client)
    connector = Connector.objects.get(organisation=org_a, name="Main site")
    assert response["Location"] == connector.get_absolute_url()
    assert connector.site_url == "https://www.example.org"  # trailing slash normalised away
    assert connector.api_key == "fresh-key-for-main-site-000111"
    assert connector.entity_types == ["article", "event"]
    assert connector.next_sync_at is not None
    event = AuditEvent.objects.get(connector=connector)
    assert event.action == "CREATED" and event.actor == alice
    assert event.changes["site_url"] == "https://www.example.org"
    assert "fresh-key" not in json.dumps(event.changes)
    page = alice_client.get(connector.get_absolute_url()).text
    assert "Connector “Main site” created" in page


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("name", "", "Give the connector a name."),
        ("site_url", "", "Enter the address of your WordPress site."),
        ("site_url", "www.example.org", "Enter a full address starting with https://"),
        ("site_url", "ftp://example.org", "Enter a full address starting with https://"),
        ("site_url", "javascript:alert(1)", "Enter a full address starting with https://"),
        ("site_url", "https://", "The address has no host name"),
        ("site_url", "https://admin:pw@example.org", "Remove the user name and password"),
        ("site_url", "https://example.org:http/", "The port in this address must be a number"),
        ("site_url", "https://example.org:99999", "The port in this address must be a number"),
        ("site_url", "https://exa mple.org", "The host name is not valid"),
        ("site_url", "https://exa<mple.org", "The host name is not valid"),
        ("site_url", "https://example.org/?p=1", "Remove the ?query or #fragment"),
        ("api_key", "", "Paste the sync API key from the WordPress plugin."),
        ("entity_types", [], "Choose at least one kind of content to sync."),
        ("frequency", "2m", "Select a valid choice."),
    ],
)
def test_create_form_messages(alice_client, org_a, field, value, message):
    response = post_create(alice_client, **{field: value})
    assert response.status_code == 200
    assert message in response.text
    assert "Please correct the 1 field marked below." in response.text
    assert not Connector.objects.filter(organisation=org_a).exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://10.1.2.3",
        "https://192.168.0.10/wp",
        "http://[::1]/",
        "http://169.254.169.254/latest",
        "http://localhost:8000",
        "http://2130706433",
        "http://0x7f.1",
    ],
)
def test_private_addresses_refused_unless_allowed(alice_client, org_a, settings, url):
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
    response = post_create(alice_client, site_url=url)
    assert "the platform does not connect to private or local networks" in response.text
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = True
    assert post_create(alice_client, site_url=url).status_code == 302


def test_name_unique_per_organisation(alice_client, org_a, org_b, connector_a):
    response = post_create(alice_client, name=connector_a.name.upper())
    assert "This organisation already has a connector named" in response.text
    # The same name in another organisation is fine.
    make_connector(org_b, name="Main site")
    assert post_create(alice_client).status_code == 302


def test_create_form_never_echoes_the_key(alice_client):
    response = post_create(alice_client, name="", api_key="do-not-echo-this-key-123")
    assert "Give the connector a name." in response.text
    assert "do-not-echo-this-key-123" not in response.text


# ---- Settings ------------------------------------------------------------------------------


def settings_data(connector, **overrides):
    data = {
        "name": connector.name,
        "site_url": connector.site_url,
        "frequency": connector.frequency,
        "entity_types": list(connector.entity_types),
        "conflict_policy": connector.conflict_policy,
        "sync_direction": connector.sync_direction,
        "reconcile_frequency": connector.reconcile_frequency,
        "api_key": "",
        "field_mapping_overrides": "",
        "push_enabled": "on",
    }
    if connector.mirror_images:
        data["mirror_images"] = "on"
    data.update(overrides)
    return data


def post_settings(client, connector, **overrides):
    return client.post(
        reverse("connectors:settings", args=["acme", connector.pk]),
        settings_data(connector, **overrides),
    )


def test_settings_key_is_write_only(alice_client, connector_a):
    page = alice_client.get(reverse("connectors:settings", args=["acme", connector_a.pk])).text
    assert KEY not in page
    assert 'name="api_key"' in page and "A key is stored: type to replace it" in page
    assert 'name="site_url" value="https://wp.example.org"' in page
    assert 'name="name" value="Acme Association site"' in page
    assert 'value="' + KEY not in page
    # Saving with the key left blank keeps it.
    post_settings(alice_client, connector_a, name="Renamed")
    connector = Connector.objects.get(pk=connector_a.pk)
    assert connector.name == "Renamed" and connector.api_key == KEY


def test_settings_save_records_the_diff(alice_client, alice, connector_a):
    response = post_settings(
        alice_client,
        connector_a,
        name="Acme website",
        entity_types=["article", "member", "event", "document"],
        mirror_images="on",
        api_key=NEW_KEY,
        site_url="https://NEW.example.org/",
    )
    assert response.status_code == 302
    connector = Connector.objects.get(pk=connector_a.pk)
    assert connector.api_key == NEW_KEY and connector.mirror_images
    event = AuditEvent.objects.get(connector=connector_a, action="UPDATED")
    assert event.actor == alice
    assert event.changes["name"] == {"before": "Acme Association site", "after": "Acme website"}
    assert event.changes["mirror_images"] == {"before": False, "after": True}
    assert event.changes["site_url"]["after"] == "https://new.example.org"
    assert connector.site_url == "https://new.example.org"
    assert event.changes["entity_types"]["after"] == ["article", "member", "event", "document"]
    assert "api_key" in event.changes
    assert NEW_KEY not in json.dumps(event.changes) and KEY not in json.dumps(event.changes)

    audit = alice_client.get(reverse("connectors:audit", args=["acme", connector_a.pk])).text
    assert "changed the settings" in audit
    assert "Acme Association site" in audit and "Acme website" in audit
    assert "(changed)" in audit
    assert NEW_KEY not in audit and KEY not in audit


def test_settings_without_changes_records_nothing(alice_client, connector_a):
    response = post_settings(alice_client, connector_a)
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="UPDATED").exists()


def test_frequency_change_recomputes_next_sync(alice_client, connector_a):
    far = timezone.now() + timedelta(days=5)
    Connector.objects.filter(pk=connector_a.pk).update(next_sync_at=far)
    connector_a.refresh_from_db()
    post_settings(alice_client, connector_a, frequency="15m")
    connector = Connector.objects.get(pk=connector_a.pk)
    assert connector.next_sync_at < timezone.now() + timedelta(minutes=16)
    post_settings(alice_client, connector, frequency="manual")
    assert Connector.objects.get(pk=connector_a.pk).next_sync_at is None


def test_field_mapping_overrides_are_validated(alice_client, connector_a):
    good = {"event": {"venue": "meta.location"}, "article": {"title": "title.rendered"}}
    assert (
        post_settings(
            alice_client, connector_a, field_mapping_overrides=json.dumps(good)
        ).status_code
        == 302
    )
    assert Connector.objects.get(pk=connector_a.pk).field_mapping_overrides == good

    cases = [
        ("{not json", "This is not valid JSON (line 1"),
        ("[1, 2]", "Field mappings must be a JSON object"),
        ('{"widget": {"title": "x"}}', "&quot;widget&quot; is not an entity type"),
        ('{"event": {"colour": "meta.c"}}', "&quot;colour&quot; is not a field of event records"),
        ('{"event": {"venue": ""}}', "The source path for event.venue must be"),
        ('{"event": ["venue"]}', "The mapping for &quot;event&quot; must be an object"),
        ('{"member": {"external_id": "id"}}', "&quot;external_id&quot; is not a field"),
        ("[" * 5000 + "]" * 5000, "nests too deeply or holds a huge number"),
        ('{"event": {"venue": ' + "9" * 10000 + "}}", "nests too deeply or holds a huge number"),
        ('{"event": {"venue": "' + "x" * 20000 + '"}}', "limited to 20,000 characters"),
    ]
    for raw, message in cases:
        response = post_settings(alice_client, connector_a, field_mapping_overrides=raw)
        assert response.status_code == 200, raw
        assert message in response.text, raw
        assert "Nothing was saved." in response.text
    assert Connector.objects.get(pk=connector_a.pk).field_mapping_overrides == good


def test_settings_errors_keep_the_header_unchanged(alice_client, connector_a, org_a):
    make_connector(org_a, name="Other")
    response = post_settings(alice_client, connector_a, name="Other", site_url="ftp://x")
    assert "This organisation already has a connector named" in response.text
    assert "Enter a full address" in response.text
    assert "<h1>Acme Association site" in response.text
    assert Connector.objects.get(pk=connector_a.pk).name == "Acme Association site"


RETYPE = "Nothing was saved, so paste the key again: it is never sent back to your browser."


def test_a_typed_key_that_was_not_kept_is_asked_for_again(alice_client, connector_a):
    """After another field's error the key box comes back empty (write-only): the form says so
    beside it, in both forms, and only when a key was typed."""
    response = post_create(alice_client, site_url="ftp://x", api_key="typed-key-000111222")
    assert RETYPE in response.text and "typed-key-000111222" not in response.text
    assert RETYPE not in post_create(alice_client, site_url="ftp://x", api_key="").text
    response = post_settings(alice_client, connector_a, site_url="ftp://x", api_key=NEW_KEY)
    assert RETYPE in response.text and NEW_KEY not in response.text
    assert "Leave blank to keep the stored key." not in response.text
    assert RETYPE not in post_settings(alice_client, connector_a, site_url="ftp://x").text
    assert Connector.objects.get(pk=connector_a.pk).api_key == KEY


def test_settings_asks_for_a_name_as_the_create_form_does(alice_client, connector_a):
    response = post_settings(alice_client, connector_a, name="")
    assert "Give the connector a name." in response.text
    assert "This field is required." not in response.text


def test_the_audit_diff_reads_as_the_settings_form(alice_client, connector_a):
    """Labels and choice names, not column names and stored codes ("entity_types",
    "two_way"); the key still only shows that it changed."""
    post_settings(
        alice_client,
        connector_a,
        entity_types=["article", "document"],
        sync_direction="two_way",
        mirror_images="on",
        api_key=NEW_KEY,
    )
    saved = alice_client.get(reverse("connectors:settings", args=["acme", connector_a.pk])).text
    assert (
        "Settings saved: Sync API key, Content types to import, "
        "Mirror images and files onto the platform, Sync direction." in saved
    )
    alice_client.post(reverse("connectors:pause", args=["acme", connector_a.pk]))
    html = alice_client.get(reverse("connectors:audit", args=["acme", connector_a.pk])).text
    rows = {
        label: (before, after)
        for label, before, after in re.findall(
            r'<th scope="row">([^<]+)</th><td class="diff-before">([^<]*)</td>'
            r'<td class="diff-after">([^<]*)</td>',
            html,
        )
    }
    assert rows["Content types to import"] == ("Article, Member, Event", "Article, Document")
    assert rows["Sync direction"] == (
        "Import only (WordPress → platform)",
        "Two-way (platform edits are pushed back to WordPress)",
    )
    assert rows["Mirror images and files onto the platform"] == ("no", "yes")
    assert rows["Sync API key"] == ("••••••", "•••••• (changed)")
    assert rows["Status"] == ("Active", "Paused")
    assert NEW_KEY not in html and "entity_types" not in html and "two_way" not in html
