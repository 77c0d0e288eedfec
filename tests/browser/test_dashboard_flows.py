"""What an organisation admin clicks, end to end in headless Chromium."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from connectors.models import Connector
from syncjobs.models import SyncJob
from tests.dashboard.conftest import make_job, make_log

from .conftest import POLL_SECONDS, login, next_poll, screenshot


def test_create_pause_resume_and_audit(browser_page, alice, connector_a):
    page = browser_page
    login(page, alice)
    expect(page.get_by_role("heading", name="Connectors")).to_be_visible()
    screenshot(page, "list")

    page.get_by_role("link", name="New connector").click()
    page.get_by_label("Name").fill("Acme blog")
    page.get_by_label("Site URL").fill("ftp://blog.acme.example")
    page.get_by_label("Sync API key").fill("blog-sync-key-5566778899")
    page.get_by_label("Document").check()
    page.get_by_role("button", name="Create connector").click()
    expect(page.locator(".field-error")).to_contain_text(
        "Enter a full address starting with https://"
    )
    # The key is never echoed back: it has to be typed again.
    expect(page.get_by_label("Sync API key")).to_have_value("")

    page.get_by_label("Site URL").fill("https://blog.acme.example/")
    page.get_by_label("Sync API key").fill("blog-sync-key-5566778899")
    page.get_by_role("button", name="Create connector").click()
    expect(page.locator(".messages")).to_contain_text("Connector “Acme blog” created")
    expect(page.locator(".breadcrumb [aria-current]")).to_have_text("Acme blog")
    connector = Connector.objects.get(name="Acme blog")
    assert connector.site_url == "https://blog.acme.example"
    assert "document" in connector.entity_types

    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Pause Sync").click()
    expect(page.locator(".messages")).to_contain_text("Sync paused")
    expect(page.locator("h1 .badge")).to_have_text("Paused")

    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Resume Sync").click()
    expect(page.locator(".messages")).to_contain_text("Sync resumed")
    expect(page.locator("h1 .badge")).to_have_text("Active")

    page.get_by_role("link", name="Audit Log").click()
    events = page.locator(".audit-event")
    expect(events).to_have_count(3)
    expect(events.nth(0)).to_contain_text("resumed syncing")
    expect(events.nth(0).locator(".diff")).to_contain_text("Paused")
    expect(events.nth(1)).to_contain_text("paused syncing")
    expect(events.nth(2)).to_contain_text("created the connector")
    expect(events.nth(2)).to_contain_text("https://blog.acme.example")
    assert "blog-sync-key" not in page.content()


def test_settings_edit_shows_diff_in_audit_log(browser_page, alice, connector_a):
    page = browser_page
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("link", name="Settings")).to_have_attribute("aria-current", "page")
    key_input = page.get_by_label("Sync API key")
    expect(key_input).to_have_value("")
    expect(key_input).to_have_attribute("placeholder", re.compile("A key is stored"))
    screenshot(page, "settings")

    page.get_by_label("Name").fill("Acme website")
    page.get_by_label("Sync frequency").select_option("15m")
    page.get_by_label("Company").check()
    page.get_by_label("Field mapping overrides").fill('{"event": {"colour": "meta.c"}}')
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".form-error")).to_contain_text("Nothing was saved")
    expect(page.locator(".field-error")).to_contain_text('"colour" is not a field of event records')

    page.get_by_label("Field mapping overrides").fill('{"event": {"venue": "meta.location"}}')
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("They apply from the next sync")
    expect(page.locator("h1")).to_contain_text("Acme website")

    page.get_by_role("link", name="Audit Log").click()
    diff = page.locator(".audit-event").first.locator("table.diff")
    # Fields and values as the Settings form names them, not columns and stored codes.
    expect(diff.locator("tr", has_text="Name")).to_contain_text("Acme Association site")
    expect(diff.locator("tr", has_text="Name")).to_contain_text("Acme website")
    expect(diff.locator("tr", has_text="Sync frequency")).to_contain_text("Every 15 minutes")
    expect(diff.locator("tr", has_text="Content types to import")).to_contain_text("Company")
    expect(diff.locator("tr", has_text="Field mapping overrides")).to_contain_text("meta.location")
    screenshot(page, "audit")


def test_job_page_refreshes_live_until_the_job_ends(browser_page, alice, connector_a):
    page = browser_page
    job = make_job(connector_a, status="PENDING", triggered_by=alice)
    status_url = f"/o/acme/connectors/{connector_a.pk}/jobs/{job.pk}/status/"
    polls = []
    page.on(
        "request", lambda request: polls.append(request.url) if status_url in request.url else None
    )
    page.clock.install()  # the poll intervals pass by next_poll(), not in real time
    login(page, alice)
    page.goto(job.get_absolute_url())
    badge = page.locator("#job-status .card-header .badge")
    expect(badge).to_have_text("Pending")
    page.evaluate("window.__noReload = true")  # lost if the page reloaded

    SyncJob.objects.filter(pk=job.pk).update(
        status="RUNNING",
        started_at=timezone.now() - timedelta(seconds=10),
        current_entity_type="article",
        stats={"article": {"total": 40, "processed": 10, "created": 10}},
    )
    next_poll(page)
    expect(badge).to_have_text("Running")
    expect(page.locator("#job-status")).to_contain_text("10 / 40 records (25%)")
    expect(page.locator("#job-status progress").first).to_have_attribute("value", "10")
    screenshot(page, "job-running")

    make_log(job, 40, start=1)
    SyncJob.objects.filter(pk=job.pk).update(
        status="COMPLETED",
        finished_at=timezone.now(),
        stats={"article": {"total": 40, "processed": 40, "created": 40}},
    )
    next_poll(page)
    expect(badge).to_have_text("Completed")
    expect(page.locator("#job-status")).to_contain_text("40 / 40 records (100%)")
    # The last poll's HX-Trigger refreshed the log table with the job's rows.
    expect(page.locator("#job-log tbody tr")).to_have_count(40)
    assert page.evaluate("window.__noReload") is True

    # Polling stopped by itself: no status request in the next two intervals.
    seen = len(polls)
    assert seen >= 2
    next_poll(page, 2 * POLL_SECONDS + 1)
    assert page.evaluate("window.__noReload") is True  # a round trip after the timers ran
    assert len(polls) == seen
    expect(page.locator("#job-status")).not_to_have_attribute("hx-trigger", re.compile("every"))
    screenshot(page, "job")


def test_log_filters_search_and_pagination(browser_page, alice, connector_a):
    page = browser_page
    job = make_job(connector_a)
    make_log(job, 60, start=1)
    make_log(job, 3, start=500, entity_type="member", status="FAILED", error="Email is invalid")
    login(page, alice)
    page.goto(job.get_absolute_url())
    rows = page.locator("#job-log tbody tr")
    expect(rows).to_have_count(50)

    page.evaluate("window.__noReload = true")
    page.get_by_label("Status", exact=True).select_option("FAILED")
    expect(rows).to_have_count(3)
    expect(page.locator("#job-log")).to_contain_text("Email is invalid")
    expect(page).to_have_url(re.compile(r"status=FAILED"))
    assert page.evaluate("window.__noReload") is True  # swapped by htmx, not reloaded

    page.get_by_label("Status", exact=True).select_option("")
    expect(rows).to_have_count(50)
    expect(page).not_to_have_url(re.compile(r"status=FAILED"))
    page.get_by_label("External or internal ID").fill("42")
    page.get_by_label("External or internal ID").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("42")

    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(50)
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(13)
    expect(rows.last).to_contain_text("Article")
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("502")
    csv_link = page.get_by_role("link", name="Download CSV")
    expect(csv_link).to_have_attribute("href", re.compile(r"log\.csv"))


def test_cancel_running_job_from_the_overview(browser_page, alice, connector_a):
    page = browser_page
    job = make_job(
        connector_a, status="RUNNING", stats={"article": {"total": 100, "processed": 30}}
    )
    Connector.objects.filter(pk=connector_a.pk).update(
        next_sync_at=timezone.now() + timedelta(minutes=20)
    )
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    expect(page.locator("#status-card")).to_contain_text("30 of 100 records")
    expect(page.get_by_role("button", name="Run Full Sync")).to_be_disabled()
    screenshot(page, "overview-running")
    page.get_by_role("button", name="Cancel sync").click()
    expect(page.locator(".messages")).to_contain_text("Cancellation requested")
    job.refresh_from_db()
    assert job.cancel_requested_at is not None
    assert AuditEvent.objects.filter(action="SYNC_CANCELLED", actor=alice).exists()
    expect(page.locator("#job-status")).to_contain_text("Cancellation requested")


def test_overview_history_and_countdown(browser_page, alice, connector_a):
    page = browser_page
    jobs = [make_job(connector_a, status=s) for s in ("COMPLETED", "FAILED", "COMPLETED")]
    Connector.objects.filter(pk=connector_a.pk).update(
        next_sync_at=timezone.now() + timedelta(minutes=3, seconds=30)
    )
    page.clock.install()  # the countdown's seconds pass by next_poll(), not in real time
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    countdown = page.locator("#status-card [data-countdown]")
    expect(countdown).to_have_text(re.compile(r"in 3 min \d+ s"))
    first = countdown.text_content()
    next_poll(page, 2)
    expect(countdown).not_to_have_text(first)  # ticking without reload
    expect(page.locator("#statistics")).to_contain_text("67%")
    screenshot(page, "overview")

    page.get_by_role("link", name="Sync History").click()
    expect(page.locator(".history-table tbody tr")).to_have_count(3)
    screenshot(page, "history")
    # The whole row is clickable (app.js), not just the link in it.
    page.locator("tr.table-clickable").nth(1).locator("td").nth(1).click()
    expect(page).to_have_url(re.compile(rf"/jobs/{jobs[1].pk}/$"))
    expect(page.locator("#job-status")).to_contain_text("The sync failed")


def test_phone_width_layout(browser_page, alice, connector_a):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    make_job(connector_a)
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    expect(page.get_by_role("button", name="Run Full Sync")).to_be_visible()
    # Nothing overflows the viewport horizontally.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "overview-phone")


def test_overview_picks_up_a_scheduled_sync_and_follows_it(browser_page, alice, connector_a):
    """The countdown reaches zero -> the status card refreshes once and finds the job the
    scheduler started -> it polls while the job runs -> when it ends, polling stops and the
    statistics refresh (HX-Trigger: job-finished), all without reloading the page."""
    page = browser_page
    # The page's clock moves by next_poll(), so the sync falls due when the test says, however
    # long the page took to load (in real time it could be due before the first tick).
    Connector.objects.filter(pk=connector_a.pk).update(
        next_sync_at=timezone.now() + timedelta(seconds=60)
    )
    page.clock.install()
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    page.evaluate("window.__noReload = true")
    card = page.locator("#status-card")
    expect(card).not_to_have_attribute("hx-trigger", "every 4s")
    expect(page.locator("#statistics")).to_contain_text("no finished sync yet")
    expect(card.locator("[data-countdown]")).to_have_text(re.compile(r"in \d+ s|in 1 min"))

    job = make_job(  # what the scheduler would do when the sync falls due
        connector_a,
        status="RUNNING",
        kind=SyncJob.Kind.INCREMENTAL,
        trigger=SyncJob.Trigger.SCHEDULER,
        stats={"article": {"total": 20, "processed": 5}},
    )
    next_poll(page, 61)  # the countdown reaches zero: "countdown-done"
    next_poll(page, 6)  # the card's `delay:6s`
    expect(card).to_contain_text(f"Incremental sync #{job.pk}")
    expect(card).to_have_attribute("hx-trigger", "every 4s")
    expect(card).to_contain_text("5 of 20 records")

    SyncJob.objects.filter(pk=job.pk).update(
        status="COMPLETED",
        finished_at=timezone.now(),
        stats={"article": {"total": 20, "processed": 20, "created": 20}},
    )
    next_poll(page)
    expect(card.locator(".facts")).to_contain_text("Completed")
    expect(card).not_to_have_attribute("hx-trigger", "every 4s")
    expect(page.locator("#statistics")).to_contain_text("last 1 finished job")
    expect(page.locator("#statistics")).to_contain_text("100%")
    assert page.evaluate("window.__noReload") is True


def test_core_flows_work_without_javascript(chromium, live_server, alice, connector_a):
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        job = make_job(connector_a)
        make_log(job, 5, start=1)
        make_log(job, 2, start=100, status="FAILED", error="Title is empty")
        login(page, alice)
        page.goto(job.get_absolute_url())
        page.get_by_label("Status", exact=True).select_option("FAILED")
        page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(r"status=FAILED"))
        expect(page.locator("#job-log tbody tr")).to_have_count(2)
        expect(page.locator("#job-log")).to_contain_text("Title is empty")

        page.goto(connector_a.get_absolute_url())
        page.locator("details.menu summary").click()  # <details> opens natively
        page.get_by_role("button", name="Pause Sync").click()
        expect(page.locator(".messages")).to_contain_text("Sync paused")
        page.get_by_role("link", name="Sync History").click()
        page.get_by_role("link", name=f"Full sync #{job.pk}").click()
        expect(page.locator("#job-status")).to_contain_text("Completed")
    finally:
        context.close()
