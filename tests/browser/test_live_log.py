"""The record log fills in by itself while its job runs: new rows appear at the top, the
reader's filters hold, and nothing the reader is looking at is reloaded."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from syncjobs.models import SyncJob
from tests.dashboard.conftest import make_job, make_log

from .conftest import login, next_poll


def test_the_log_of_a_running_job_fills_in_by_itself_keeping_filters(
    browser_page, alice, connector_a
):
    page = browser_page
    job = make_job(
        connector_a,
        status="RUNNING",
        started_at=timezone.now() - timedelta(seconds=20),
        current_entity_type="article",
        stats={"article": {"total": 400, "processed": 0}},
    )
    page.clock.install()  # the log's polls come by next_poll(), not in real time
    login(page, alice)
    page.goto(job.get_absolute_url())
    rows = page.locator("#job-log tbody tr:visible")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("No records processed yet")

    make_log(job, 3, start=100)
    next_poll(page)
    expect(rows).to_have_count(3)  # the empty-log line went away
    expect(rows.first).to_contain_text("102")  # newest first
    page.evaluate("window.__noReload = true")

    # The reader filters on failures: only failures come in live from then on.
    page.goto(job.get_absolute_url() + "?status=FAILED")
    page.evaluate("window.__noReload = true")
    expect(page.locator("#job-log tbody tr:visible")).to_contain_text(["No log rows match"])
    make_log(job, 2, start=200, status="SUCCESS")
    make_log(job, 2, start=300, status="FAILED", error="Title is missing")
    filtered = page.locator("#job-log tbody tr:visible")
    next_poll(page)
    expect(filtered).to_have_count(2)
    expect(filtered.nth(0)).to_contain_text("301")
    expect(filtered.nth(1)).to_contain_text("300")
    expect(page.locator("#f-status")).to_have_value("FAILED")
    assert page.evaluate("window.__noReload") is True

    # More arrive: on top of those already shown, which stay where they were.
    make_log(job, 1, start=400, status="FAILED", error="Bad date")
    next_poll(page)
    expect(filtered).to_have_count(3)
    expect(filtered.nth(0)).to_contain_text("400")
    expect(filtered.nth(2)).to_contain_text("300")

    # The job ends: the log is loaded once more, and stops asking.
    SyncJob.objects.filter(pk=job.pk).update(status="COMPLETED", finished_at=timezone.now())
    next_poll(page)
    expect(page.locator("#job-status .card-header .badge")).to_have_text("Completed")
    expect(page.locator("#log-live")).to_have_count(0)
    expect(filtered).to_have_count(3)
