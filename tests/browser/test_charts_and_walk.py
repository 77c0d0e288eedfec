"""Charts in a real browser (laptop and phone), and a walk through every page an admin and a
platform admin open, with zero console errors (a CSP violation is one): browser_page fails
the test on any."""

import re
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from tests.dashboard.conftest import make_job, make_log

from .conftest import job_history, login, next_poll, screenshot

OVERFLOW_JS = (Path(__file__).parent / "overflow.js").read_text()


def test_job_charts_on_a_laptop_and_a_phone(browser_page, alice, connector_a):
    page = browser_page
    jobs = job_history(connector_a)
    login(page, alice)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(connector_a.get_absolute_url())
        records = page.locator("figure.chart-records")
        expect(records.locator("svg")).to_be_visible()
        expect(records.locator("g.chart-bar")).to_have_count(12)
        box = records.locator("svg").bounding_box()
        assert box["width"] <= width and box["height"] > 60
        assert page.evaluate(OVERFLOW_JS, False) == []
        # The numbers: on hover (the bar's title) and in the table under the chart.
        newest = jobs[-1]
        expect(records.locator("g.chart-bar title").last).to_have_text(
            f"#{newest.pk} full sync (completed): Succeeded 69, Failed 1"
        )
        records.locator("summary", has_text="The numbers").click()
        expect(records.locator("tbody tr")).to_have_count(12)
        expect(records.locator("tbody tr").last).to_contain_text("69")
        screenshot(page, f"overview-charts-{width}")
    # A bar opens its job.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/o/acme/connectors/{connector_a.pk}/history/")
    page.locator("figure.chart-duration svg a").last.click()
    expect(page).to_have_url(re.compile(re.escape(newest.get_absolute_url()) + "$"))


def test_a_walk_through_every_page_has_no_console_error(browser_page, alice, root, connector_a):
    page = browser_page
    jobs = job_history(connector_a, 6)  # the sixth failed (HTTP 503)
    make_log(jobs[-1], 5, start=1)
    make_log(jobs[-1], 3, start=100, operation="SKIP", status="SKIPPED")
    running = make_job(
        connector_a, status="RUNNING", stats={"article": {"total": 9, "processed": 3}}
    )
    page.clock.install()  # the running job's polls come by next_poll(), not in real time
    login(page, alice)
    base = f"/o/acme/connectors/{connector_a.pk}"
    for url in (
        "/o/acme/connectors/",
        "/o/acme/connectors/activity/",
        "/o/acme/connectors/audit/",
        f"{base}/",
        f"{base}/history/",
        f"{base}/activity/",
        f"{base}/activity/?skips=1",
        f"{base}/audit/",
        f"{base}/settings/",
        jobs[-1].get_absolute_url(),
        jobs[-1].get_absolute_url() + "?status=FAILED",
        running.get_absolute_url(),
    ):
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        # The running job finishes while its page is open: the card and the log update.
        if url == running.get_absolute_url():
            make_log(running, 2, start=500)
            next_poll(page)
            expect(page.locator("#job-log tbody tr:visible")).to_have_count(2)
            type(running).objects.filter(pk=running.pk).update(
                status="COMPLETED", finished_at=timezone.now()
            )
            next_poll(page)
            expect(page.locator("#job-status .card-header .badge")).to_have_text("Completed")
    page.context.clear_cookies()
    login(page, root)
    page.goto("/platform/connectors/")
    expect(page.locator("figure.chart-hours svg")).to_be_visible()
    expect(page.locator("figure.chart-causes")).to_contain_text("HTTP 503 from the site.")
    screenshot(page, "platform-charts")
