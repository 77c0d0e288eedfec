"""Every form field with hostile input: a clear validation message (or a clean save of what
is merely unusual), never a 500, never reflected markup, never an internal address saved."""

import socket

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from connectors.models import Connector
from tests.conftest import make_connector

from .hostile import BAD_URLS, HOSTILE_STRINGS, INTERNAL_URLS, assert_no_raw_vector

VALID_CREATE = {
    "name": "Hostile test site",
    "site_url": "https://wp.example.org",
    "api_key": "a-valid-looking-sync-key-0123456789abcdef",
    "frequency": "1h",
    "entity_types": ["article", "member"],
}


@pytest.fixture
def no_outbound(monkeypatch):
    """Form validation must never connect anywhere but loopback: record and refuse any
    other destination (169.254.169.254 above all)."""
    attempts = []
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not host.startswith(("127.", "::1", "/")):
            attempts.append(address)
            raise OSError(f"test refused outbound connection to {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield attempts
    assert not attempts, f"validation tried to connect to {attempts}"


def error_shown(response) -> bool:
    text = response.text
    return "field-error" in text or "form-error" in text or "errorlist" in text


def post_create(client, **changes):
    data = {**VALID_CREATE, **changes}
    return client.post(reverse("connectors:create", args=["acme"]), data)


@pytest.mark.parametrize("field", ["name", "site_url", "api_key", "frequency"])
@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
def test_create_form_field_with_hostile_input(alice_client, org_a, field, value, no_outbound):
    before = Connector.objects.count()
    response = post_create(alice_client, **{field: value})
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:
        assert error_shown(response), f"{field}={value[:40]!r}: form re-shown without an error"
        assert Connector.objects.count() == before
        assert_no_raw_vector(response.text, f"create form ({field})")
    else:
        connector = Connector.objects.get(organisation=org_a)
        assert "\x00" not in connector.name + connector.site_url
        page = alice_client.get(connector.get_absolute_url())
        assert page.status_code == 200
        assert_no_raw_vector(page.text, "detail page of a connector saved from hostile input")


@pytest.mark.parametrize("value", [*HOSTILE_STRINGS[:2], "", "[]", '{"article": 5}'], ids=range(5))
def test_create_form_entity_types_with_hostile_input(alice_client, org_a, value, no_outbound):
    response = post_create(alice_client, entity_types=[value])
    assert response.status_code == 200
    assert error_shown(response)
    assert not Connector.objects.filter(organisation=org_a).exists()


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_site_urls_are_refused(alice_client, org_a, settings, url, no_outbound):
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
    response = post_create(alice_client, site_url=url)
    assert response.status_code == 200, f"{url} was accepted as a site URL"
    assert error_shown(response)
    assert not Connector.objects.filter(organisation=org_a).exists()


@pytest.mark.parametrize("url", BAD_URLS, ids=range(len(BAD_URLS)))
def test_bad_site_urls_are_refused(alice_client, org_a, url, no_outbound):
    response = post_create(alice_client, site_url=url)
    assert response.status_code == 200, f"{url!r} was accepted as a site URL"
    assert error_shown(response)
    assert not Connector.objects.filter(organisation=org_a).exists()


SETTINGS_FIELDS = [
    "name",
    "site_url",
    "api_key",
    "frequency",
    "field_mapping_overrides",
    "conflict_policy",
    "sync_direction",
    "mirror_images",
    "store_protected_content",
    "reconcile_frequency",
]
MAPPING_JUNK = [
    "{",
    "[]",
    '{"article": {"title": 5}}',
    '{"nope": {}}',
    '{"article": {"<script>alert(1)</script>": "title"}}',
    '{"article": {"title": "<img src=x onerror=alert(1)>"}}',
    "1" * 10_000,
    '{"a": ' * 5000 + "1" + "}" * 5000,
]


def settings_data(connector, **changes):
    data = {
        "name": connector.name,
        "site_url": connector.site_url,
        "api_key": "",
        "frequency": connector.frequency,
        "entity_types": connector.entity_types,
        "field_mapping_overrides": "",
        "conflict_policy": connector.conflict_policy,
        "sync_direction": connector.sync_direction,
        "reconcile_frequency": connector.reconcile_frequency,
        "push_enabled": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("field", SETTINGS_FIELDS)
def test_settings_form_field_with_hostile_input(alice_client, connector_a, field, no_outbound):
    url = reverse("connectors:settings", args=["acme", connector_a.pk])
    values = HOSTILE_STRINGS + (MAPPING_JUNK if field == "field_mapping_overrides" else [])
    for value in values:
        before = Connector.objects.values().get(pk=connector_a.pk)
        response = alice_client.post(url, settings_data(connector_a, **{field: value}))
        assert response.status_code in (200, 302), (field, value[:40], response.status_code)
        if response.status_code == 200:
            assert error_shown(response), f"{field}={value[:40]!r}: no error shown"
            assert Connector.objects.values().get(pk=connector_a.pk) == before
            assert_no_raw_vector(response.text, f"settings form ({field})")
        else:
            page = alice_client.get(url)
            assert page.status_code == 200
            assert_no_raw_vector(page.text, "settings page after saving hostile input")
            for event in AuditEvent.objects.filter(connector=connector_a):
                assert "\x00" not in str(event.changes)
            connector_a.refresh_from_db()


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_settings_refuse_internal_site_urls(alice_client, connector_a, settings, url, no_outbound):
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
    response = alice_client.post(
        reverse("connectors:settings", args=["acme", connector_a.pk]),
        settings_data(connector_a, site_url=url),
    )
    assert response.status_code == 200, f"{url} was saved as the site URL"
    assert error_shown(response)
    assert Connector.objects.get(pk=connector_a.pk).site_url == connector_a.site_url


# Long, unicode, markup, SQL-looking and NUL: the shapes that break queries and templates.
QUERY_VALUES = [HOSTILE_STRINGS[i] for i in (0, 1, 2, 4, 6)]


@pytest.mark.parametrize("value", QUERY_VALUES, ids=range(len(QUERY_VALUES)))
def test_other_inputs_with_hostile_values(alice_client, populated, value):
    """Delete confirmation, sync kind, log filters and pagination cursors."""
    connector, job = populated["connector"], populated["job"]
    args = ["acme", connector.pk]
    response = alice_client.post(reverse("connectors:delete", args=args), {"confirm_name": value})
    # The confirmation page again, the mismatch flagged under the box (not a 500)
    assert response.status_code == 400
    assert "This does not match the connector" in response.text
    assert_no_raw_vector(response.text, "delete confirmation")
    assert Connector.objects.filter(pk=connector.pk).exists()
    response = alice_client.post(reverse("connectors:sync", args=args), {"kind": value})
    assert response.status_code == 302
    assert not connector.jobs.filter(status__in=["PENDING", "RUNNING"]).exists()
    job_url = reverse("syncjobs:detail", args=[*args, job.pk])
    requests = [
        (job_url, {"q": value}),
        (job_url, {"entity_type": value, "status": value, "operation": value}),
        (job_url, {"before": value, "after": value}),
        (reverse("syncjobs:log_csv", args=[*args, job.pk]), {"q": value}),
    ]
    for name in ("history", "activity", "audit"):
        requests.append(
            (reverse(f"connectors:{name}", args=args), {"page": value, "before": value})
        )
    requests.append((reverse("connectors:list", args=["acme"]), {"page": value}))
    for url, params in requests:
        response = alice_client.get(url, params)
        assert response.status_code == 200, (url, params, response.status_code)
        if response.get("Content-Type", "").startswith("text/html"):
            assert_no_raw_vector(response.text, f"{url} with {list(params)}")
        else:
            b"".join(response.streaming_content if response.streaming else [response.content])


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
def test_settings_entity_types_with_hostile_input(alice_client, connector_a, value, no_outbound):
    url = reverse("connectors:settings", args=["acme", connector_a.pk])
    before = Connector.objects.values().get(pk=connector_a.pk)
    response = alice_client.post(url, settings_data(connector_a, entity_types=[value]))
    assert response.status_code == 200, response.status_code
    assert error_shown(response)
    assert Connector.objects.values().get(pk=connector_a.pk) == before
    assert_no_raw_vector(response.text, "settings form (entity_types)")


# WordPress IDs an admin (or a crafted link) can type into Mapping Diagnostics.
BAD_RECORD_IDS = [*HOSTILE_STRINGS, "0", "-1", "1.5", "1e9", "9" * 40, "0x10", "½"]


@pytest.fixture
def mapping_site(org_a):
    """Mapping Diagnostics fetch from WordPress: a simulator on loopback, so a valid form
    really runs and an invalid one must be stopped before any request."""
    from wpsim import SimulatedSite, serve

    site = SimulatedSite(records=14, seed=4, key="hostile-mapping-key-0123456789abcdef01")
    with serve(site) as server:
        connector = make_connector(
            org_a, site_url=server.url, api_key=site.key, entity_types=["article", "event"]
        )
        yield site, connector


@pytest.mark.parametrize("value", BAD_RECORD_IDS, ids=range(len(BAD_RECORD_IDS)))
def test_mapping_diagnostics_record_id_with_hostile_input(
    alice_client, mapping_site, value, no_outbound
):
    site, connector = mapping_site
    url = reverse("diagnostics:mapping", args=["acme", connector.pk])
    requests_before = site.request_count
    response = alice_client.get(url, {"entity_type": "article", "record_id": value})
    assert response.status_code == 200, (value[:40], response.status_code)
    assert_no_raw_vector(response.text, "mapping diagnostics form")
    if value.strip():
        # Not a positive WordPress ID: said next to the field, and WordPress is not asked.
        assert error_shown(response), f"record_id={value[:40]!r}: no error shown"
        assert 'id="mapping-article"' not in response.text
        assert site.request_count == requests_before


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
def test_mapping_diagnostics_entity_type_with_hostile_input(
    alice_client, mapping_site, value, no_outbound
):
    _site, connector = mapping_site
    url = reverse("diagnostics:mapping", args=["acme", connector.pk])
    for params in ({"entity_type": value}, {"entity_type": value, "record_id": "3"}):
        response = alice_client.get(url, params)
        assert response.status_code == 200, (value[:40], response.status_code)
        assert error_shown(response), f"entity_type={value[:40]!r}: no error shown"
        assert 'class="card mapping-report"' not in response.text
        assert_no_raw_vector(response.text, "mapping diagnostics form")


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
def test_platform_filters_with_hostile_input(root_client, connector_a, value):
    url = reverse("platform_admin:connectors")
    for params in ({"q": value}, {"status": value}, {"kind": value}, {"sort": value}):
        params["page"] = value
        response = root_client.get(url, params)
        assert response.status_code == 200, (params.keys(), response.status_code)
        assert_no_raw_vector(response.text, f"platform connectors with {list(params)}")
        name = next(iter(params))
        if name != "q" or "\x00" in value or len(value) > 120:
            # An impossible filter is reported and ignored, never a 500 or a silent empty list.
            assert "This filter was ignored." in response.text, (name, value[:40])
            assert connector_a.name in response.text


@pytest.mark.parametrize("value", HOSTILE_STRINGS, ids=range(len(HOSTILE_STRINGS)))
def test_login_form_with_hostile_input(client, alice, value):
    for data in ({"username": value, "password": value}, {"username": "alice", "password": value}):
        response = client.post(reverse("login"), data)
        assert response.status_code == 200, response.status_code
        assert error_shown(response), f"login with {value[:40]!r}: no error shown"
        assert_no_raw_vector(response.text, "login form")
        assert "_auth_user_id" not in client.session
