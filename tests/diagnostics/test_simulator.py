"""The connection test and Mapping Diagnostics against the real simulator on loopback:
every fault in the simulator's list gives the right step a red cross and a precise message,
and neither diagnostic writes a platform record or a sync log row."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from diagnostics import runner
from diagnostics.models import ConnectionTest
from records.mapping import map_record
from tests.conftest import make_connector
from wpsim import BAD_FIELDS, SimulatedSite, serve

from .conftest import KEY, run_test, steps_by_key

ALL_STEPS = ["reachable", "rest_root", "plugin", "api_key", "data"]
# Where the plugin's settings live (wordpress-plugin/README.md): every message that sends the
# admin to WordPress spells the path the same way, so it matches the menu they click through.
PLUGIN_SETTINGS = "WP Admin → Settings → Association App → Sync"


@pytest.fixture
def fast_client(monkeypatch):
    """Short timeouts so the timeout fault costs half a second, not ten."""
    monkeypatch.setitem(runner.CLIENT_OPTIONS, "timeout", 0.5)
    monkeypatch.setitem(runner.CLIENT_OPTIONS, "connect_timeout", 0.5)


@pytest.fixture
def site():
    # 200 records: enough for at least one deliberately bad record of each type.
    return SimulatedSite(records=200, seed=7, key=KEY)


@pytest.fixture
def connector(org_a, server):
    return make_connector(
        org_a,
        site_url=server.url,
        api_key=KEY,
        entity_types=["article", "member", "event", "document"],
    )


def statuses(test):
    return [steps_by_key(test)[key]["status"] for key in ALL_STEPS]


def test_healthy_simulator_passes(connector, site, alice, unchanged_platform_data):
    test = run_test(connector, alice)
    assert statuses(test) == ["pass"] * 5, test.steps
    steps = steps_by_key(test)
    assert "Simulated Safety Association" in steps["api_key"]["message"]
    for entity_type in ("article", "member", "event", "document"):
        assert f"{entity_type} {site.count(entity_type)}" in steps["data"]["message"]
    assert "predates change capture" not in steps["data"]["message"]  # plugin 1.2
    assert test.status == ConnectionTest.Status.PASSED
    assert AuditEvent.objects.get(action=AuditEvent.Action.CONNECTION_TESTED).changes[
        "outcome"
    ] == ("passed")


def test_wrong_key_after_rotation(connector, site, unchanged_platform_data):
    site.rotate_key()
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "fail", "skipped"]
    message = steps_by_key(test)["api_key"]["message"]
    assert "rejected the sync API key" in message
    assert "regenerated" in message
    assert f"Generate a new key in {PLUGIN_SETTINGS}" in message
    assert KEY not in str(test.steps)


def test_plugin_missing(connector, site, unchanged_platform_data):
    site.inject("plugin_missing")
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "fail", "skipped", "skipped"]
    steps = steps_by_key(test)
    assert "does not list the Association App namespace" in steps["rest_root"]["message"]
    assert (
        "answered 404: the Association App plugin is not installed or not activated"
        in (steps["plugin"]["message"])
    )
    assert "flush permalinks" in steps["plugin"]["message"]
    assert (
        steps["api_key"]["message"]
        == "Skipped: “Plugin installed” failed, so this step cannot run."
    )


def test_permalinks_not_flushed(connector, site, unchanged_platform_data):
    site.inject("permalinks")
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "fail", "skipped", "skipped"]
    message = steps_by_key(test)["plugin"]["message"]
    assert "although the Association App plugin is active" in message
    assert "Flush permalinks" in message


def test_sync_disabled(connector, site, unchanged_platform_data):
    site.inject("disabled")
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "fail", "skipped", "skipped"]
    message = steps_by_key(test)["plugin"]["message"]
    assert "sync API is switched off" in message
    assert f"Turn it on in {PLUGIN_SETTINGS} (tick “Sync API: Enabled”)" in message


def test_no_key_saved(org_a, server, site, unchanged_platform_data):
    """Without a key the key-less probes still run; the key step says where to get one."""
    connector = make_connector(org_a, site_url=server.url, api_key="")
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "fail", "skipped"]
    message = steps_by_key(test)["api_key"]["message"]
    assert "No API key is saved for this connector" in message
    assert f"Generate one in {PLUGIN_SETTINGS}" in message


def test_site_down(org_a, unchanged_platform_data):
    site = SimulatedSite(records=5, seed=1, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as stopped:
        url = stopped.url
    connector = make_connector(org_a, site_url=url, api_key=KEY)
    test = run_test(connector)
    assert statuses(test) == ["fail", "skipped", "skipped", "skipped", "skipped"]
    steps = steps_by_key(test)
    assert "Could not connect to 127.0.0.1" in steps["reachable"]["message"]
    assert "web server is running" in steps["reachable"]["message"]
    assert steps["rest_root"]["message"] == (
        "Skipped: “HTTP reachable” failed, so this step cannot run."
    )
    assert steps["data"]["message"] == (
        "Skipped: “HTTP reachable” failed, so “API key valid” and this step cannot run."
    )


def test_timeout(connector, site, fast_client, unchanged_platform_data):
    site.inject("hang", every=True, seconds=3)
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "fail", "skipped", "skipped"]
    step = steps_by_key(test)["plugin"]
    assert "did not answer within 0.5 s" in step["message"]
    assert 400 <= step["duration_ms"] < 3000


def test_rest_index_timeout(connector, site, fast_client):
    site.inject("hang", endpoint="wp-json", every=True, seconds=3)
    test = run_test(connector)
    steps = steps_by_key(test)
    assert steps["rest_root"]["status"] == "fail"
    assert "did not answer within 0.5 s" in steps["rest_root"]["message"]


def test_not_wordpress_at_all(connector, site, unchanged_platform_data):
    site.inject("not_wordpress")
    test = run_test(connector)
    assert statuses(test) == ["pass", "fail", "fail", "skipped", "skipped"]
    steps = steps_by_key(test)
    assert (
        "did not answer with a JSON object, so this is not a WordPress REST API"
        in (steps["rest_root"]["message"])
    )
    assert "does not answer like WordPress" in steps["plugin"]["message"]


def test_tls_self_signed_certificate(org_a, unchanged_platform_data):
    site = SimulatedSite(records=5, seed=1, key=KEY)
    with serve(site, host="127.0.0.1", port=0, tls=True) as server:
        assert server.url.startswith("https://")
        connector = make_connector(org_a, site_url=server.url, api_key=KEY)
        test = run_test(connector)
    assert statuses(test) == ["fail", "skipped", "skipped", "skipped", "skipped"]
    message = steps_by_key(test)["reachable"]["message"]
    assert "secure (TLS) connection to 127.0.0.1 failed" in message
    assert "certificate" in message


def test_tls_with_a_trusted_certificate_passes(org_a, monkeypatch):
    site = SimulatedSite(records=5, seed=1, key=KEY)
    with serve(site, host="127.0.0.1", port=0, tls=True) as server:
        monkeypatch.setitem(runner.CLIENT_OPTIONS, "verify", server.cert_path)
        connector = make_connector(org_a, site_url=server.url, api_key=KEY)
        test = run_test(connector)
    assert statuses(test) == ["pass"] * 5
    assert "the TLS certificate is valid" in steps_by_key(test)["reachable"]["message"]


def test_non_json_answer_to_the_keyed_ping(connector, site, unchanged_platform_data):
    site.inject("html", endpoint="ping", nth=2)  # the key-less ping (1st) is fine
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "fail", "skipped"]
    assert "is not valid JSON: it is an HTML page" in steps_by_key(test)["api_key"]["message"]


def test_non_json_answers_on_every_sync_route(connector, site):
    site.inject("html", every=True)
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "fail", "skipped", "skipped"]
    assert "not JSON" in steps_by_key(test)["plugin"]["message"]
    assert "page cache" in steps_by_key(test)["plugin"]["message"]


def test_truncated_ping(connector, site):
    site.inject("truncate", endpoint="ping", nth=2)
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "fail", "skipped"]
    assert "truncated" in steps_by_key(test)["api_key"]["message"]


def test_server_error_on_every_list_endpoint(connector, site):
    for endpoint in ("articles", "members", "events", "documents"):
        site.inject("status", endpoint=endpoint, status=500, every=True)
    test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "pass", "fail"]
    message = steps_by_key(test)["data"]["message"]
    assert "No entity type could be read" in message
    assert "article: The site had a server error (HTTP 500)" in message


def test_a_plugin_without_change_capture_passes_with_an_update_advice(
    org_a, unchanged_platform_data
):
    site = SimulatedSite(records=20, seed=3, key=KEY, plugin_version="1.1.0")
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(org_a, site_url=server.url, api_key=KEY)
        test = run_test(connector)
    step = steps_by_key(test)["data"]
    assert step["status"] == "pass"
    assert "predates change capture" in step["message"]
    assert "the cron publishing a scheduled post" in step["message"]
    assert "Update the Association App plugin to 1.2 or later." in step["message"]


def test_types_disabled_in_the_plugin(org_a, unchanged_platform_data):
    site = SimulatedSite(records=20, seed=3, key=KEY, entity_types=["article"])
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, site_url=server.url, api_key=KEY, entity_types=["article", "event"]
        )
        test = run_test(connector)
    steps = steps_by_key(test)
    assert steps["data"]["status"] == "pass"
    assert "switched off in the plugin's settings): event" in steps["data"]["message"]


def test_none_of_the_enabled_types_served(org_a, unchanged_platform_data):
    site = SimulatedSite(records=20, seed=3, key=KEY, entity_types=["article"])
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, site_url=server.url, api_key=KEY, entity_types=["event", "company"]
        )
        test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "pass", "fail"]
    message = steps_by_key(test)["data"]["message"]
    assert "serves none of the entity types enabled on this connector (event, company)" in message
    assert f"enable them in {PLUGIN_SETTINGS} (“Entity types served”)" in message


def test_empty_site_has_no_data(org_a):
    site = SimulatedSite(records=0, seed=3, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(org_a, site_url=server.url, api_key=KEY)
        test = run_test(connector)
    assert statuses(test) == ["pass", "pass", "pass", "pass", "fail"]
    assert "No enabled entity type returned any record" in steps_by_key(test)["data"]["message"]


# --- Mapping Diagnostics against the simulator ----------------------------------------------


def mapping_url(connector):
    return reverse("diagnostics:mapping", args=[connector.organisation.slug, connector.pk])


def test_mapping_samples_every_enabled_type(connector, site, alice_client, unchanged_platform_data):
    response = alice_client.get(mapping_url(connector))
    assert response.status_code == 200
    html = response.text
    for entity_type in ("article", "member", "event", "document"):
        assert f'id="mapping-{entity_type}"' in html
    assert 'data-status="PRESENT"' in html
    assert "WordPress could not be read" not in html
    assert 'id="mapping-company"' not in html  # not enabled on the connector


@pytest.mark.parametrize(
    ("entity_type", "field", "status"),
    [
        ("article", "title", "MISSING"),  # absent or null
        ("event", "starts_at", "INVALID"),  # not a GMT timestamp
        ("document", "size", "INVALID"),  # "482 KB"
        ("member", "email", "MISSING"),  # null
    ],
)
def test_mapping_of_a_bad_record_by_id(
    connector, site, alice_client, entity_type, field, status, unchanged_platform_data
):
    bad_id = sorted(site.bad_ids(entity_type))[0]
    # Whether the record fails is the sync engine's decision; the page must say the same.
    fails = bool(map_record(entity_type, site.record(entity_type, bad_id)).errors)
    html = alice_client.get(
        mapping_url(connector), {"entity_type": entity_type, "record_id": bad_id}
    ).text
    assert f"Record {bad_id}, as requested." in html
    assert f"<code>{BAD_FIELDS[entity_type]}</code>" in html  # the source path
    assert f'data-field="{field}" data-status="{status}"' in html
    assert (f"The sync would record this {entity_type} as FAILED" in html) is fails
    assert ("This record would sync." in html) is not fails


def test_mapping_of_a_good_record_by_id(connector, site, alice_client, unchanged_platform_data):
    good_id = next(i for i in site.ids("event") if i not in site.bad_ids("event"))
    html = alice_client.get(
        mapping_url(connector), {"entity_type": "event", "record_id": good_id}
    ).text
    assert "This record would sync." in html
    assert 'data-field="starts_at" data-status="PRESENT"' in html


def test_mapping_with_wrong_key(connector, site, alice_client):
    site.rotate_key()
    html = alice_client.get(mapping_url(connector)).text
    assert "WordPress could not be read: The site rejected the sync API key" in html
    assert html.count("Not checked: see the error above.") == 3
    # Said once, in the banner: the first type's card points to it instead of repeating it.
    assert html.count("The site rejected the sync API key") == 1
    assert html.count("Could not be read: see the error above.") == 1


def test_mapping_of_a_type_the_plugin_does_not_serve(org_a, alice_client):
    site = SimulatedSite(records=30, seed=3, key=KEY, entity_types=["article"])
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, site_url=server.url, api_key=KEY, entity_types=["event", "article"]
        )
        html = alice_client.get(mapping_url(connector)).text
    assert "The site does not serve event records" in html
    assert 'id="mapping-article"' in html and 'data-status="PRESENT"' in html
    assert "WordPress could not be read" not in html


def test_mapping_when_the_plugin_is_missing(connector, site, alice_client):
    site.inject("plugin_missing")
    html = alice_client.get(mapping_url(connector)).text
    assert "WordPress could not be read: The Association App plugin did not answer" in html
    assert html.count("Not checked: see the error above.") == 3
    assert html.count("The Association App plugin did not answer") == 1


@pytest.mark.parametrize(
    ("fault", "options", "failing", "expected"),
    [
        ("reset", {"endpoint": "ping"}, "plugin", "closed or reset"),
        ("status", {"status": 503, "every": True}, "plugin", "answered HTTP 503"),
        ("status", {"status": 429, "endpoint": "ping"}, "plugin", "429 Too Many Requests"),
        ("status", {"status": 500, "endpoint": "ping", "nth": 2}, "api_key", "server error"),
        ("oversize", {"endpoint": "ping", "nth": 2}, "api_key", "byte limit"),
        ("status", {"status": 502, "endpoint": "wp-json", "every": True}, "rest_root", "HTTP 502"),
    ],
)
def test_other_simulator_faults_hit_the_right_step(
    connector, site, fault, options, failing, expected, unchanged_platform_data
):
    site.inject(fault, **options)
    test = run_test(connector)
    step = steps_by_key(test)[failing]
    assert step["status"] == "fail", test.steps
    assert expected in step["message"]
    failed = [s["key"] for s in test.steps if s["status"] == "fail"]
    assert failed == [failing]


def test_latency_only_slows_the_test_down(connector, site):
    site.inject("latency", endpoint="ping", seconds=0.3)
    test = run_test(connector)
    assert statuses(test) == ["pass"] * 5
    assert steps_by_key(test)["plugin"]["duration_ms"] >= 300


def test_mapping_of_a_record_id_that_does_not_exist(
    connector, site, alice_client, unchanged_platform_data
):
    missing = max(site.ids("event")) + 1000
    before = site.request_count
    response = alice_client.get(
        mapping_url(connector), {"entity_type": "event", "record_id": missing}
    )
    assert response.status_code == 200
    html = response.text
    assert f"WordPress serves no event with ID {missing}" in html
    assert "the ID is wrong, the post is trashed or an auto-draft" in html
    assert "data-status=" not in html  # no field table for a record that is not there
    assert site.request_count == before + 1  # one GET of that record, nothing else


def test_mapping_of_an_id_of_another_type(connector, site, alice_client, unchanged_platform_data):
    """An article's ID asked for as an event: WordPress has no such event, and says so."""
    article_id = next(i for i in site.ids("article") if not site.has("event", i))
    html = alice_client.get(
        mapping_url(connector), {"entity_type": "event", "record_id": article_id}
    ).text
    assert f"WordPress serves no event with ID {article_id}" in html
    assert "it belongs to another type" in html


# Every fault kind the simulator has (wpsim.FAULT_KINDS) and what the connection test must
# make of it: a fault added to the simulator fails test_fault_table_covers_every_kind until
# it is given a line here. (options, failing step or None when all pass, words in its message)
FAULT_TABLE = {
    "latency": ({"endpoint": "ping", "seconds": 0.2}, None, ""),
    "status": ({"status": 503, "every": True}, "plugin", "answered HTTP 503"),
    "hang": ({"every": True, "seconds": 3}, "plugin", "did not answer within 0.5 s"),
    "reset": ({"endpoint": "ping"}, "plugin", "closed or reset"),
    "truncate": ({"endpoint": "ping", "nth": 2}, "api_key", "truncated"),
    "html": ({"endpoint": "ping", "nth": 2}, "api_key", "it is an HTML page"),
    "wrong_total": ({"every": True}, "data", "wrong shape"),
    "oversize": ({"endpoint": "ping", "nth": 2}, "api_key", "byte limit"),
    "plugin_missing": ({}, "plugin", "flush permalinks"),
    "permalinks": ({}, "plugin", "Flush permalinks"),
    "disabled": ({}, "plugin", "sync API is switched off"),
    "not_wordpress": ({}, "rest_root", "not a WordPress REST API"),
}


def test_fault_table_covers_every_kind():
    from wpsim import FAULT_KINDS

    assert set(FAULT_TABLE) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", sorted(FAULT_TABLE))
def test_each_simulator_fault_kind_gives_the_right_step_a_cross(
    connector, site, kind, unchanged_platform_data, request
):
    options, failing, words = FAULT_TABLE[kind]
    if kind == "hang":
        # Only the hang needs the short timeout: with it, 10 MiB (oversize) or a 0.2 s delay
        # (latency) on a busy machine, the suite running in parallel, can take longer.
        request.getfixturevalue("fast_client")
    site.inject(kind, **options)
    test = run_test(connector)
    steps = steps_by_key(test)
    if failing is None:
        assert statuses(test) == ["pass"] * 5, test.steps
        return
    assert test.status == ConnectionTest.Status.FAILED
    first_failure = next(s for s in test.steps if s["status"] == "fail")
    assert first_failure["key"] == failing, test.steps
    assert words in steps[failing]["message"], steps[failing]["message"]
    later = ALL_STEPS[ALL_STEPS.index(failing) + 1 :]
    for key in later:
        if steps[key]["status"] == "skipped":
            assert steps[key]["message"].startswith("Skipped: “"), steps[key]
    assert KEY not in str(test.steps)
