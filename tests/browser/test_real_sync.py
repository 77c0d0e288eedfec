"""The product path end to end: a person in headless Chromium, the live Django server, a real
Celery worker on the test broker (Redis in CI) and the simulated WordPress site.

Nothing here writes job rows by hand: every status the page shows was set by the worker."""

import re
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect

from audit.models import AuditEvent
from connectors.models import Connector
from syncjobs.models import SyncJob, SyncLogEntry
from wpsim import SimulatedSite, serve

from .conftest import login, screenshot

KEY = "e2e-browser-sync-key-0123456789abcdefghijkl"
# Each sync request waits this long in the simulator, so a full sync runs for several of the
# page's 4-second polls and a cancel lands while it runs.
LATENCY = 0.9


@pytest.fixture
def simulator():
    site = SimulatedSite(records=140, seed=21, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        yield site, server


@pytest.fixture
def worker():
    """Call it to start a real Celery worker (solo pool, in a thread of this process)."""
    from celery.contrib.testing.worker import start_worker

    import diagnostics.tasks  # noqa: F401  (registers the tasks with the app)
    import syncjobs.tasks  # noqa: F401
    from config.celery import app

    if settings.CELERY_BROKER_URL.startswith("redis://"):
        app.control.purge()  # messages earlier tests queued for jobs that no longer exist
    stack = ExitStack()

    def start():
        stack.enter_context(
            start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30)
        )

    yield start
    stack.close()
    connections.close_all()


def badge(page):
    return page.locator("#job-status .card-header .badge")


def test_full_sync_with_a_real_worker(browser_page, alice, simulator, worker):
    site, server = simulator
    page = browser_page
    login(page, alice)

    # --- Create a connector against the simulator ---------------------------------------
    page.get_by_role("link", name="New connector").click()
    page.get_by_label("Name").fill("Acme WordPress")
    page.get_by_label("Site URL").fill(server.url + "/")
    page.get_by_label("Sync API key").fill(KEY)
    page.get_by_label("Sync frequency").select_option("1h")
    page.get_by_role("button", name="Create connector").click()
    expect(page.locator(".messages")).to_contain_text("Connector “Acme WordPress” created")
    connector = Connector.objects.get(name="Acme WordPress")
    assert connector.site_url == server.url

    # --- Run Full Sync: PENDING (no worker yet) -> RUNNING -> COMPLETED, no reload -------
    site.inject("latency", seconds=LATENCY, every=True)
    page.get_by_role("button", name="Run Full Sync").click()
    expect(page.locator(".messages")).to_contain_text("Full sync queued")
    expect(badge(page)).to_have_text("Pending")
    expect(page.locator("#job-status")).to_have_attribute("hx-trigger", "every 4s")
    screenshot(page, "e2e-job-pending")
    page.evaluate("window.__noReload = true")  # gone if the page reloads
    job = SyncJob.objects.get(connector=connector)

    worker()
    expect(badge(page)).to_have_text("Running", timeout=15_000)
    status = page.locator("#job-status")
    expect(status.locator("progress").first).to_have_attribute("max", re.compile(r"^\d+$"))
    expect(status).to_contain_text("records/s", timeout=10_000)
    screenshot(page, "e2e-job-running")
    # The simulator serves a few broken records on purpose: the job completes with failures,
    # and the badge says so instead of a plain "Completed".
    expect(badge(page)).to_have_text(re.compile(r"^Completed with \d+ failures?$"), timeout=120_000)
    assert page.evaluate("window.__noReload") is True
    job.refresh_from_db()
    failed = job.totals()["failed"]
    assert failed > 0
    expect(badge(page)).to_have_text(f"Completed with {failed} failure{'s' if failed != 1 else ''}")
    total = sum(site.count(t) for t in connector.entity_types)
    expect(status).to_contain_text(f"{total} / {total} records (100%)")
    expect(status).not_to_have_attribute("hx-trigger", "every 4s")
    # The end of the job refreshed the log table with its rows (HX-Trigger: job-finished).
    rows = page.locator("#job-log tbody tr")
    expect(rows).to_have_count(50)
    screenshot(page, "e2e-job-completed")

    # --- The job's log: filter by status and type, search by ID -------------------------
    failed = SyncLogEntry.objects.filter(job=job, status="FAILED")
    assert failed.exists(), "the simulator serves deliberately bad records"
    page.get_by_label("Status", exact=True).select_option("FAILED")
    expect(rows).to_have_count(failed.count())
    for i in range(failed.count()):
        expect(rows.nth(i)).to_contain_text("Failed")
    expect(page).to_have_url(re.compile(r"status=FAILED"))
    bad = failed.order_by("id").first()
    page.get_by_label("Entity type").select_option(bad.entity_type)
    expect(rows).to_have_count(failed.filter(entity_type=bad.entity_type).count())
    page.get_by_label("External or internal ID").fill(bad.external_id)
    page.get_by_label("External or internal ID").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(bad.error[:40])
    screenshot(page, "e2e-job-log-filtered")
    assert page.evaluate("window.__noReload") is True  # filters swap the table only
    csv_link = page.get_by_role("link", name="Download CSV")
    with page.expect_download() as download:
        csv_link.click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and bad.external_id in lines[1]

    # --- Test Connection through the worker ----------------------------------------------
    site.clear_faults()
    page.get_by_role("link", name="Acme WordPress").first.click()
    panel = page.locator("#connection-test-panel")
    panel.get_by_role("button", name="Test Connection").click()
    expect(panel).to_contain_text("All checks passed", timeout=30_000)
    expect(panel.locator(".check-pass")).to_have_count(5)
    screenshot(page, "e2e-test-connection")

    # --- Cancel a running job --------------------------------------------------------------
    # Slower still: the click must land while the job runs, however late a poll saw it start.
    site.inject("latency", seconds=2 * LATENCY, every=True)
    page.get_by_role("button", name="Run Full Sync").click()
    expect(badge(page)).to_have_text("Running", timeout=15_000)
    page.get_by_role("button", name="Cancel sync").click()
    expect(page.locator(".messages")).to_contain_text("Cancellation requested")
    expect(badge(page)).to_have_text("Cancelled", timeout=30_000)
    expect(page.locator("#job-status")).not_to_have_attribute("hx-trigger", "every 4s")
    second = SyncJob.objects.exclude(pk=job.pk).get(connector=connector)
    assert second.status == SyncJob.Status.CANCELLED
    screenshot(page, "e2e-job-cancelled")
    site.clear_faults()

    # --- Pause, resume and a settings change ---------------------------------------------
    page.get_by_role("link", name="Acme WordPress").first.click()
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Pause Sync").click()
    expect(page.locator("h1 .badge")).to_have_text("Paused")
    expect(page.locator("#status-card")).to_contain_text("Paused — resume to schedule syncs")
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Resume Sync").click()
    expect(page.locator("h1 .badge")).to_have_text("Active")
    expect(page.locator("#status-card [data-countdown]")).to_have_text(re.compile(r"^in "))
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Sync frequency").select_option("1d")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("They apply from the next sync")

    # --- The audit log names each action, who did it, and its diff -----------------------
    page.get_by_role("link", name="Audit Log").click()
    events = page.locator(".audit-event")
    expected = [
        ("UPDATED", "changed the settings"),
        ("RESUMED", "resumed syncing"),
        ("PAUSED", "paused syncing"),
        ("SYNC_CANCELLED", f"cancelled job #{second.pk}"),
        ("SYNC_TRIGGERED", f"triggered a full sync (job #{second.pk})"),
        ("CONNECTION_TESTED", "tested the connection"),
        ("SYNC_TRIGGERED", f"triggered a full sync (job #{job.pk})"),
        ("CREATED", "created the connector"),
    ]
    expect(events).to_have_count(len(expected))
    for i, (action, text) in enumerate(expected):
        expect(events.nth(i)).to_have_class(re.compile(f"audit-{action.lower()}"))
        expect(events.nth(i)).to_contain_text("Alice")
        expect(events.nth(i)).to_contain_text(text)
    updated = events.nth(0).locator("table.diff tr", has_text="Sync frequency")
    expect(updated.locator(".diff-before")).to_have_text("Hourly")
    expect(updated.locator(".diff-after")).to_have_text("Daily")
    expect(events.nth(1).locator(".diff-before")).to_have_text("Paused")
    expect(events.nth(1).locator(".diff-after")).to_have_text("Active")
    expect(events.nth(2).locator(".diff-before")).to_have_text("Active")
    expect(events.nth(2).locator(".diff-after")).to_have_text("Paused")
    expect(events.nth(7)).to_contain_text(server.url)
    screenshot(page, "e2e-audit")
    assert KEY not in page.content()
    assert AuditEvent.objects.filter(connector=connector).count() == len(expected)
