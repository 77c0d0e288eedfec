"""The connection-test panel in headless Chromium: the button (htmx, CSRF header), live
progress while the test runs, and polling that stops once it has finished."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from diagnostics.models import ConnectionTest
from tests.browser.conftest import (  # noqa: F401
    browser_page,
    chromium,
    login,
    next_poll,
    screenshot,
)
from tests.conftest import make_connector
from wpsim import SimulatedSite, serve

from .conftest import KEY

pytestmark = pytest.mark.browser

STEP = {"key": "reachable", "name": "HTTP reachable", "status": "pass", "duration_ms": 4}


def test_panel_updates_live_and_stops_polling(browser_page, alice, connector_a):  # noqa: F811
    page = browser_page
    test = ConnectionTest.objects.create(
        connector=connector_a, status=ConnectionTest.Status.RUNNING, started_at=timezone.now()
    )
    page.clock.install()  # the panel's 3 s polls come by next_poll(), not in real time
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    panel = page.locator("#connection-test-panel")
    expect(panel).to_contain_text("Running")
    expect(panel.get_by_role("button", name="Testing…")).to_be_disabled()
    expect(panel.locator('[data-status="pending"]')).to_have_count(5)

    # The worker finishes one step: the panel shows it without a reload.
    test.steps = [{**STEP, "message": "TCP connection opened."}]
    test.save(update_fields=["steps"])
    passed = panel.locator('[data-status="pass"]')
    next_poll(page, 3)
    expect(passed).to_contain_text("TCP connection opened.")
    expect(passed.locator(".check-pass")).to_have_count(1)
    expect(panel.locator('[data-status="pending"]')).to_have_count(4)

    test.status = ConnectionTest.Status.FAILED
    test.finished_at = timezone.now()
    test.steps = [
        {**STEP, "message": "TCP connection opened."},
        {
            "key": "rest_root",
            "name": "REST API root",
            "status": "fail",
            "message": "Not WordPress.",
            "duration_ms": 9,
        },
    ]
    test.save()
    failed = panel.locator('[data-status="fail"]')
    next_poll(page, 3)
    expect(failed).to_contain_text("Not WordPress.")
    expect(failed.locator(".check-fail")).to_have_count(1)
    expect(panel).to_contain_text("Failed")
    expect(panel).not_to_have_attribute("hx-trigger", "every 3s")

    # Polling stopped: requests for the panel cease.
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "connection-test" in r.url else None)
    next_poll(page, 7)  # two poll intervals and more
    expect(panel).to_contain_text("Failed")  # a round trip after the timers ran
    assert requests == []


def test_button_starts_a_test_through_htmx(browser_page, alice, connector_a):  # noqa: F811
    page = browser_page
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    panel = page.locator("#connection-test-panel")
    expect(panel).to_contain_text("Not tested yet")
    with page.expect_response(lambda r: r.url.endswith("/connection-test/run/")) as info:
        panel.get_by_role("button", name="Test Connection").click()
    assert info.value.status == 200  # htmx sent the CSRF token header
    # No worker runs in this test: the test waits, polling, on the same page.
    expect(panel).to_contain_text("Waiting for a worker")
    expect(panel).to_have_attribute("hx-trigger", "every 3s")
    assert page.url.endswith(connector_a.get_absolute_url())
    test = ConnectionTest.objects.get()
    assert test.status == ConnectionTest.Status.PENDING and test.requested_by == alice


def test_test_connection_and_mapping_against_the_simulator(
    browser_page,  # noqa: F811
    alice,
    org_a,
    celery_eager,
):
    site = SimulatedSite(records=60, seed=5, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, name="Simulated", site_url=server.url, api_key=KEY, entity_types=["event"]
        )
        page = browser_page
        login(page, alice)
        page.goto(connector.get_absolute_url())
        panel = page.locator("#connection-test-panel")
        panel.get_by_role("button", name="Test Connection").click()
        expect(panel).to_contain_text("All checks passed")
        expect(panel.locator(".check-pass")).to_have_count(5)
        expect(panel).to_contain_text(f"event {site.count('event')}")
        screenshot(page, "diagnostics-connection-test")

        site.rotate_key()
        panel.get_by_role("button", name="Test Connection").click()
        expect(panel).to_contain_text("rejected the sync API key")
        expect(panel.locator(".check-fail")).to_have_count(1)
        expect(panel.locator(".check-skipped")).to_have_count(1)
        screenshot(page, "diagnostics-connection-failed")
        site.key = KEY

        panel.get_by_role("link", name="Mapping Diagnostics").click()
        expect(page.get_by_role("heading", name="Mapping Diagnostics")).to_be_visible()
        table = page.locator("#mapping-event table")
        expect(table.locator('tr[data-field="starts_at"]')).to_contain_text("start_gmt")
        screenshot(page, "diagnostics-mapping")

        bad_id = sorted(site.bad_ids("event"))[0] if site.bad_ids("event") else None
        page.get_by_label("Entity type").select_option("event")
        page.get_by_label("WordPress ID", exact=True).fill(str(bad_id or site.ids("event")[0]))
        page.get_by_role("button", name="Check mapping").click()
        expect(page.locator("#mapping-event")).to_contain_text("as requested")
    assert ConnectionTest.objects.filter(connector=connector).count() == 2
