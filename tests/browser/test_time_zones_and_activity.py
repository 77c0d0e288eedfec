"""Times in the viewer's zone (UTC on hover), and the Activity filters, in a real browser."""

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import make_job, make_log

from .conftest import login


@pytest.fixture
def paris_page(chromium, live_server):
    """A browser in Paris (UTC+1 in January), failing on any console error as browser_page."""
    context = chromium.new_context(
        base_url=live_server.url, locale="en-GB", timezone_id="Europe/Paris"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    assert not problems, f"Browser console errors: {problems}"


def test_times_are_shown_in_the_viewer_s_zone_with_utc_on_hover(paris_page, alice, connector_a):
    page = paris_page
    started = datetime(2026, 1, 15, 12, 0, 5, tzinfo=UTC)
    job = make_job(
        connector_a,
        created_at=started,
        started_at=started,
        finished_at=datetime(2026, 1, 15, 12, 3, tzinfo=UTC),
    )
    login(page, alice)
    page.goto(f"/o/acme/connectors/{connector_a.pk}/history/")
    when = page.locator("time", has_text="2026-01-15").first
    expect(when).to_have_text("2026-01-15 13:00:05 CET")
    assert when.get_attribute("title") == "2026-01-15 13:00:05 CET (2026-01-15 12:00:05 UTC)"

    page.goto(job.get_absolute_url())
    expect(page.locator("#job-status time").first).to_have_text("2026-01-15 13:00:05 CET")


def test_activity_filters_in_the_browser(browser_page, alice, connector_a):
    page = browser_page
    job = make_job(connector_a, stats={"member": {"skipped": 30}})
    make_log(job, 30, start=1, entity_type="member", operation="SKIP", status="SKIPPED")
    make_log(job, 2, start=100, entity_type="member", operation="UPDATE")
    make_log(job, 1, start=200, entity_type="article", operation="CREATE", status="FAILED")
    login(page, alice)
    page.goto("/o/acme/connectors/")
    page.get_by_role("link", name="Activity", exact=True).click()
    expect(page.locator("h1")).to_have_text("Activity")
    feed = page.locator(".table-activity tbody")
    unchanged = page.locator(".activity-unchanged")
    expect(unchanged).to_contain_text("and 30 unchanged records (skipped)")
    expect(feed.locator("td.act-record")).to_have_count(3)

    page.get_by_label("Status").select_option("FAILED")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=FAILED"))
    expect(feed.locator("td.act-record")).to_have_count(1)
    expect(feed).to_contain_text("#200")

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Show unchanged records").check()
    page.get_by_role("button", name="Apply").click()
    expect(feed.locator("td.act-record")).to_have_count(33)
    expect(page.locator(".activity-unchanged")).to_have_count(0)
