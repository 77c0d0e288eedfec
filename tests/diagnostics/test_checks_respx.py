"""Connection test paths the simulator cannot produce, faked at the HTTP layer with respx
(the real WordPressClient and checks run; only the site is scripted)."""

import httpx
import pytest
import respx
from django.urls import reverse

from audit.models import AuditEvent
from connectors.wordpress import contract
from diagnostics.models import ConnectionTest
from tests.conftest import make_connector

from .conftest import KEY, real_wp_index, run_test, steps_by_key

SITE = "http://127.0.0.1:9"  # an IP literal: respx answers, no DNS, no real connection

PING = {
    "plugin": "association-app",
    "plugin_version": "1.0.0",
    "contract_version": 1,
    "site_name": "Example Safety Association",
    "site_url": SITE,
    "home_url": SITE,
    "timezone": "Europe/Berlin",
    "gmt_offset": 1,
    "wordpress_version": "6.1.9",
    "entity_types": list(contract.ENTITY_TYPES),
    "max_per_page": 100,
    "deletions_retention_days": 180,
    "server_time_gmt": "2024-11-30T11:00:00",
}
ARTICLE = {
    "id": 7,
    "modified_gmt": "2024-11-30T08:00:00",
    "date_gmt": "2024-11-30T08:00:00",
    "status": "publish",
    "slug": "hello",
    "link": f"{SITE}/hello/",
    "title": "Hello",
    "excerpt": "",
    "content": "<p>Hi</p>",
    "author_name": "Ann",
    "categories": [],
    "tags": [],
    "featured_image_url": None,
}


def error(status, code, message="x"):
    return httpx.Response(
        status, json={"code": code, "message": message, "data": {"status": status}}
    )


def listing(items, total=None):
    total = len(items) if total is None else total
    return httpx.Response(
        200,
        json={"items": items, "page": 1, "per_page": 1, "total": total, "total_pages": total},
    )


def ping_handler(request):
    key = request.headers.get(contract.KEY_HEADER)
    if not key:
        return error(401, contract.ERROR_MISSING_KEY)
    if key != KEY:
        return error(401, contract.ERROR_INVALID_KEY)
    return httpx.Response(200, json=PING)


def rest_route(site, value):
    """A route for {site}/?rest_route=<value>, matched before the plain home page route."""
    home = site.routes.pop("home")
    route = site.get("/", params={"rest_route": value})
    site.routes.add(home, name="home")
    return route


@pytest.fixture
def site():
    """A healthy site; tests override single routes to break one thing."""
    with respx.mock(base_url=SITE, assert_all_called=False) as mock:
        mock.get("/", name="home").respond(200, html="<html>home</html>")
        mock.get("/wp-json/", name="index").respond(200, json=real_wp_index(with_plugin=True))
        mock.get("/api/v1/sync/ping", name="ping").mock(side_effect=ping_handler)
        for endpoint in contract.ENTITY_ENDPOINTS.values():
            mock.get(f"/api/v1/sync/{endpoint}", name=endpoint).mock(return_value=listing([]))
        mock.get("/api/v1/sync/articles", name="articles").mock(
            return_value=listing([ARTICLE], total=12)
        )
        yield mock


@pytest.fixture
def connector(org_a):
    return make_connector(org_a, site_url=SITE, api_key=KEY, entity_types=["article", "event"])


def test_healthy_site_passes_all_five_steps_with_details(site, connector, alice):
    test = run_test(connector, alice)
    assert test.status == ConnectionTest.Status.PASSED
    assert [s["status"] for s in test.steps] == ["pass"] * 5
    assert [s["name"] for s in test.steps] == [
        "HTTP reachable",
        "REST API root",
        "Plugin installed",
        "API key valid",
        "Data available",
    ]
    steps = steps_by_key(test)
    assert "127.0.0.1:9 opened (plain http" in steps["reachable"]["message"]
    assert "“Real WP Harness”" in steps["rest_root"]["message"]
    assert "lists the Association App namespace" in steps["rest_root"]["message"]
    assert "Association App 1.0.0 (contract v1)" in steps["api_key"]["message"]
    assert "article 12, event 0" in steps["data"]["message"]
    assert all(isinstance(s["duration_ms"], int) and s["duration_ms"] >= 0 for s in test.steps)
    assert test.started_at and test.finished_at and test.finished_at >= test.started_at
    event = AuditEvent.objects.get(action=AuditEvent.Action.CONNECTION_TESTED)
    assert event.actor == alice
    assert event.changes == {"test": test.pk, "outcome": "passed"}


def test_rest_api_blocked_with_403(site, connector):
    site.routes["index"].respond(403, json={"code": "rest_forbidden", "message": "no"})
    rest_route(site, "/").respond(403, html="<h1>Forbidden</h1>")
    steps = steps_by_key(run_test(connector))
    assert steps["rest_root"]["status"] == "fail"
    assert "answered HTTP 403" in steps["rest_root"]["message"]
    assert "security plugin" in steps["rest_root"]["message"]
    # The plugin has its own URL: the remaining steps still run and pass.
    assert steps["plugin"]["status"] == "pass"
    assert steps["data"]["status"] == "pass"


def test_json_that_is_not_a_wordpress_index(site, connector):
    site.routes["index"].respond(200, json={"status": "ok", "version": 3})
    steps = steps_by_key(run_test(connector))
    assert steps["rest_root"]["status"] == "fail"
    assert 'no "wp/v2" namespace' in steps["rest_root"]["message"]


def test_rest_index_falls_back_to_rest_route_when_pretty_permalinks_are_off(site, connector):
    site.routes["index"].respond(404, html="<html>Not found</html>")
    rest_route(site, "/").respond(200, json=real_wp_index(with_plugin=False))
    steps = steps_by_key(run_test(connector))
    assert steps["rest_root"]["status"] == "pass"
    assert "?rest_route=/" in steps["rest_root"]["message"]
    assert "does not list the Association App namespace" in steps["rest_root"]["message"]


def test_sync_disabled_in_plugin_settings(site, connector):
    site.routes["ping"].mock(side_effect=None, return_value=error(403, contract.ERROR_DISABLED))
    test = run_test(connector)
    steps = steps_by_key(test)
    assert steps["plugin"]["status"] == "fail"
    assert "sync API is switched off" in steps["plugin"]["message"]
    assert steps["api_key"]["status"] == "skipped"
    assert steps["api_key"]["message"] == (
        "Skipped: “Plugin installed” failed, so this step cannot run."
    )
    assert steps["data"]["message"] == (
        "Skipped: “Plugin installed” failed, so “API key valid” and this step cannot run."
    )
    assert steps["api_key"]["duration_ms"] == 0
    event = AuditEvent.objects.get(action=AuditEvent.Action.CONNECTION_TESTED)
    assert event.changes["outcome"] == "failed"
    assert event.changes["failed_step"] == "Plugin installed"
    assert "switched off" in event.changes["message"]


def test_plugin_active_but_permalinks_not_flushed(site, connector):
    # /wp-json/ lists the namespace, but the rewrite rule for /api/v1/sync/ is missing.
    site.routes["ping"].mock(
        side_effect=None, return_value=httpx.Response(404, html="<h1>404</h1>")
    )
    steps = steps_by_key(run_test(connector))
    assert steps["plugin"]["status"] == "fail"
    assert "although the Association App plugin is active" in steps["plugin"]["message"]
    assert "Flush permalinks" in steps["plugin"]["message"]
    assert "Settings → Permalinks" in steps["plugin"]["message"]


def test_permalinks_detected_through_rest_route_when_index_is_blocked(site, connector):
    site.routes["index"].respond(401, json={"code": "rest_login_required", "message": "login"})
    rest_route(site, "/").respond(401, json={"code": "rest_login_required"})
    site.routes["ping"].mock(side_effect=None, return_value=httpx.Response(404, html="nope"))
    rest_route(site, "/association-app/v1/ping").mock(
        return_value=error(401, contract.ERROR_MISSING_KEY)
    )
    steps = steps_by_key(run_test(connector))
    assert steps["rest_root"]["status"] == "fail"
    assert "requires a login" in steps["rest_root"]["message"]
    assert "Flush permalinks" in steps["plugin"]["message"]


def test_ping_answering_something_else_than_the_plugin(site, connector):
    site.routes["ping"].mock(
        side_effect=None, return_value=httpx.Response(401, html="<h1>Basic auth required</h1>")
    )
    steps = steps_by_key(run_test(connector))
    assert steps["plugin"]["status"] == "fail"
    message = steps["plugin"]["message"]
    assert "but it answered HTTP 401: <h1>Basic auth required</h1>" in message
    assert "allow requests to /api/v1/sync/" in message


def test_unsupported_contract_version(site, connector):
    def handler(request):
        if not request.headers.get(contract.KEY_HEADER):
            return error(401, contract.ERROR_MISSING_KEY)
        return httpx.Response(200, json={**PING, "contract_version": 2})

    site.routes["ping"].mock(side_effect=handler)
    steps = steps_by_key(run_test(connector))
    assert steps["api_key"]["status"] == "fail"
    assert "contract version 2" in steps["api_key"]["message"]
    assert steps["data"]["status"] == "skipped"


def test_no_api_key_saved(site, org_a):
    connector = make_connector(org_a, site_url=SITE, api_key="")
    steps = steps_by_key(run_test(connector))
    assert [steps[k]["status"] for k in ("reachable", "rest_root", "plugin")] == ["pass"] * 3
    assert steps["api_key"]["status"] == "fail"
    assert "No API key is saved" in steps["api_key"]["message"]


def test_key_that_cannot_be_decrypted(site, connector, settings):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    steps = steps_by_key(run_test(connector))
    assert steps["plugin"]["status"] == "pass"
    assert steps["api_key"]["status"] == "fail"
    assert "cannot be decrypted" in steps["api_key"]["message"]
    assert "Enter the key again" in steps["api_key"]["message"]


def test_enabled_types_not_served_by_the_site(site, org_a):
    def handler(request):
        if request.headers.get(contract.KEY_HEADER) != KEY:
            return error(401, contract.ERROR_MISSING_KEY)
        return httpx.Response(200, json={**PING, "entity_types": ["article"]})

    site.routes["ping"].mock(side_effect=handler)
    connector = make_connector(org_a, site_url=SITE, api_key=KEY, entity_types=["event"])
    steps = steps_by_key(run_test(connector))
    assert steps["data"]["status"] == "fail"
    assert (
        "serves none of the entity types enabled on this connector (event)"
        in (steps["data"]["message"])
    )


def test_enabled_types_without_records(site, org_a):
    connector = make_connector(org_a, site_url=SITE, api_key=KEY, entity_types=["event", "company"])
    steps = steps_by_key(run_test(connector))
    assert steps["data"]["status"] == "fail"
    assert (
        "No enabled entity type returned any record (event 0, company 0)"
        in (steps["data"]["message"])
    )


def test_no_enabled_types(site, org_a):
    connector = make_connector(org_a, site_url=SITE, api_key=KEY, entity_types=[])
    steps = steps_by_key(run_test(connector))
    assert steps["data"]["status"] == "fail"
    assert "No entity types are enabled" in steps["data"]["message"]


def test_one_type_failing_is_reported_beside_the_ones_that_work(site, connector):
    site.routes["events"].respond(500, html="<b>Fatal error</b>")
    steps = steps_by_key(run_test(connector))
    assert steps["data"]["status"] == "pass"
    assert "article 12" in steps["data"]["message"]
    assert (
        "Could not read event: The site had a server error (HTTP 500)" in (steps["data"]["message"])
    )


def test_invalid_site_url_fails_the_first_step(org_a):
    connector = make_connector(org_a, site_url="ftp://files.example.org", api_key=KEY)
    test = run_test(connector)
    steps = steps_by_key(test)
    assert steps["reachable"]["status"] == "fail"
    assert "must start with http:// or https://" in steps["reachable"]["message"]
    assert all(steps[k]["status"] == "skipped" for k in ("rest_root", "plugin", "api_key", "data"))
    assert test.status == ConnectionTest.Status.FAILED


def test_soft_time_limit_fails_the_running_step_and_skips_the_rest(site, connector):
    from celery.exceptions import SoftTimeLimitExceeded

    from diagnostics import runner

    def slow_ping(request):
        if not request.headers.get(contract.KEY_HEADER):
            return error(401, contract.ERROR_MISSING_KEY)
        raise SoftTimeLimitExceeded()  # what Celery raises in the worker when the limit hits

    site.routes["ping"].mock(side_effect=slow_ping)
    test = ConnectionTest.objects.create(connector=connector)
    runner.run_connection_test(test.pk, abort_on=(SoftTimeLimitExceeded,))
    test.refresh_from_db()
    steps = steps_by_key(test)
    assert test.status == ConnectionTest.Status.FAILED and test.finished_at
    assert steps["api_key"]["status"] == "fail"
    assert "reached its time limit during this step" in steps["api_key"]["message"]
    assert steps["data"] == {
        "key": "data",
        "name": "Data available",
        "status": "skipped",
        "message": "Skipped: the test was stopped by its time limit.",
        "duration_ms": 0,
    }
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CONNECTION_TESTED).count() == 1


def test_time_budget_skips_steps_not_started_in_time(site, connector, monkeypatch):
    import time

    def slow_index(request):
        time.sleep(0.4)  # the slow site itself: this step must overrun the 0.3 s budget
        return httpx.Response(200, json=real_wp_index(with_plugin=True))

    site.routes["index"].mock(side_effect=slow_index)
    monkeypatch.setattr(ConnectionTest, "SOFT_TIME_LIMIT", 0.3)
    steps = steps_by_key(run_test(connector))
    assert steps["reachable"]["status"] == "pass"
    assert steps["rest_root"]["status"] == "pass"
    assert steps["rest_root"]["duration_ms"] >= 400
    for key in ("plugin", "api_key", "data"):
        assert steps[key]["status"] == "skipped"
        assert steps[key]["message"] == "Skipped: the test ran out of time before this step."


def test_a_test_is_run_once(site, connector):
    from diagnostics import runner

    test = run_test(connector)
    assert runner.run_connection_test(test.pk) is None  # a redelivered message does nothing
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CONNECTION_TESTED).count() == 1


def test_button_to_result_through_the_celery_task(
    site, connector, alice, alice_client, django_capture_on_commit_callbacks, celery_eager
):
    args = ["acme", connector.pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("diagnostics:run_connection_test", args=args), HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    test = ConnectionTest.objects.get()
    assert test.status == ConnectionTest.Status.PASSED
    assert test.requested_by == alice
    panel = alice_client.get(
        reverse("diagnostics:connection_test", args=args), HTTP_HX_REQUEST="true"
    ).text
    assert "All checks passed" in panel
    assert panel.count('class="check-pass"') == 5
    assert "every 3s" not in panel


def test_page_cache_answering_the_ping(site, connector):
    site.routes["ping"].mock(
        side_effect=None, return_value=httpx.Response(200, html="<html>cached home</html>")
    )
    steps = steps_by_key(run_test(connector))
    assert steps["plugin"]["status"] == "fail"
    assert (
        "a page cache, CDN or the theme answers in place of the plugin"
        in (steps["plugin"]["message"])
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [(503, "answered HTTP 503: WordPress or the web server failed"), (429, "429 Too Many")],
)
def test_ping_server_errors_and_rate_limits(site, connector, status, expected):
    site.routes["ping"].mock(side_effect=None, return_value=httpx.Response(status, text="busy"))
    steps = steps_by_key(run_test(connector))
    assert steps["plugin"]["status"] == "fail"
    assert expected in steps["plugin"]["message"]
