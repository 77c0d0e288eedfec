"""Platform staff edit connectors in the Django admin too: those edits must reach the
organisation's Audit Log exactly like dashboard edits (who, what, before/after)."""

import json
import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from connectors.models import Connector


def _admin_form_data(html: str) -> dict:
    """The change form's current values, as the browser would submit them unchanged."""
    data = {}
    for tag in re.findall(r"<(?:input|select|textarea)[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1).startswith("_"):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                data[name.group(1)] = "on"
            continue
        data[name.group(1)] = value.group(1) if value else ""
    return data


def test_admin_edit_is_audited_with_its_diff_and_actor(root_client, connector_a):
    url = reverse("admin:connectors_connector_change", args=[connector_a.pk])
    page = root_client.get(url).content.decode()
    data = _admin_form_data(page)
    # Selects and textareas carry their value differently: state them explicitly.
    data.update(
        {
            "organisation": str(connector_a.organisation_id),
            "name": "Renamed by staff",
            "kind": connector_a.kind,
            "site_url": connector_a.site_url,
            "entity_types": json.dumps(connector_a.entity_types),
            "field_mapping_overrides": "{}",
            "frequency": Connector.Frequency.DAILY,
            "sync_direction": connector_a.sync_direction,
            "conflict_policy": connector_a.conflict_policy,
            "reconcile_frequency": connector_a.reconcile_frequency,
            "status": connector_a.status,
        }
    )
    response = root_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    event = AuditEvent.objects.get(connector=connector_a, action=AuditEvent.Action.UPDATED)
    assert event.actor_name == "root"
    assert event.changes["name"] == {"before": "Acme Association site", "after": "Renamed by staff"}
    assert event.changes["frequency"]["after"] == Connector.Frequency.DAILY
    # The key was not touched and is not in the diff; nothing of it is stored in the event.
    assert "api_key" not in event.changes
    assert Connector.objects.get(pk=connector_a.pk).api_key == connector_a.api_key


def _change_data(root_client, connector, **changes):
    url = reverse("admin:connectors_connector_change", args=[connector.pk])
    data = _admin_form_data(root_client.get(url).content.decode())
    data.update(
        {
            "organisation": str(connector.organisation_id),
            "kind": connector.kind,
            "site_url": connector.site_url,
            "entity_types": json.dumps(connector.entity_types),
            "field_mapping_overrides": "{}",
            "frequency": connector.frequency,
            "sync_direction": connector.sync_direction,
            "conflict_policy": connector.conflict_policy,
            "reconcile_frequency": connector.reconcile_frequency,
            "status": connector.status,
            **changes,
        }
    )
    return url, data


@pytest.mark.parametrize(
    ("site_url", "words"),
    [
        ("http://LOCALHOST/wp", "not allowed: it is a loopback address"),
        ("http://127.0.0.1:8080/", "not allowed: it is a loopback address"),
        ("http://[fec0::1]/", "not allowed: it is a site-local address"),
        ("http://xn--a.example", "The host name is not valid"),
    ],
)
def test_the_admin_form_refuses_what_the_dashboard_refuses(
    root_client, connector_a, settings, site_url, words
):
    # Issue 19, case 3: every form that saves a site URL checks it as the guard will.
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
    url, data = _change_data(root_client, connector_a, site_url=site_url)
    response = root_client.post(url, data)
    assert response.status_code == 200
    assert words in response.content.decode()
    connector_a.refresh_from_db()
    assert connector_a.site_url == "https://wp.example.org"


def test_the_admin_form_stores_the_site_url_as_the_dashboard_does(root_client, connector_a):
    url, data = _change_data(root_client, connector_a, site_url="HTTPS://WWW.Example.ORG/wp/")
    assert root_client.post(url, data).status_code == 302
    connector_a.refresh_from_db()
    assert connector_a.site_url == "https://www.example.org/wp"


def test_admin_delete_is_audited_and_the_event_outlives_the_connector(root_client, connector_a):
    url = reverse("admin:connectors_connector_delete", args=[connector_a.pk])
    response = root_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Connector.objects.filter(pk=connector_a.pk).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.DELETED)
    assert event.connector is None
    assert event.connector_name == "Acme Association site"
    assert event.actor_name == "root"
    assert event.organisation_id == connector_a.organisation_id


def test_org_admin_cannot_reach_the_django_admin(alice_client, connector_a):
    url = reverse("admin:connectors_connector_change", args=[connector_a.pk])
    response = alice_client.get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
