"""Issue 14's pages in headless Chromium: the drift a reconciliation found and repaired on the
Overview, in Sync History and on its job page, and a draft shown as not published."""

import re

from playwright.sync_api import expect

from records.models import Article, Notification
from syncjobs.models import SyncJob
from tests.conftest import run_like_the_worker, simulated_connector
from tests.engine.conftest import SIM_KEY, site  # noqa: F401  (a fixture)

from .conftest import login, screenshot


def run(connector, kind):
    """The worker's part, in this process."""
    job = run_like_the_worker(connector, kind)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    return job


def test_drift_is_shown_on_the_overview_the_history_and_the_job_page(
    browser_page,
    alice,
    org_a,
    site,  # noqa: F811
    server,
):
    page = browser_page
    connector = simulated_connector(
        org_a, server, SIM_KEY, name="Drifting site", entity_types=["article", "notification"]
    )
    good = [i for i in site.ids("article") if i not in site.bad_ids("article")]
    draft = next(i for i in site.ids("notification") if i not in site.bad_ids("notification"))
    site.update("notification", draft, status="draft", password_protected=False)
    run(connector, SyncJob.Kind.FULL)
    clean = run(connector, SyncJob.Kind.RECONCILE)
    assert clean.drift == 0
    login(page, alice)
    page.goto(connector.get_absolute_url())
    card = page.locator("#reconciliation")
    expect(card).to_contain_text("No drift")

    site.tamper("article", good[0], title="Changed behind the plugin's back")
    job = run(connector, SyncJob.Kind.RECONCILE)
    assert job.drift == 1

    page.reload()
    expect(card.get_by_role("status")).to_have_text(
        re.compile(r"^1 change missed by incremental syncs, found and repaired")
    )
    screenshot(page, "overview-drift")
    card.get_by_role("link", name=f"Reconciliation #{job.pk}").click()
    expect(page).to_have_url(re.compile(f"/jobs/{job.pk}/$"))
    expect(page.locator(".job-drift")).to_contain_text("1 change missed by incremental syncs")
    # The updated counter opens exactly its rows: the repaired record, saying why.
    page.locator('#job-status a[href*="operation=UPDATE"]').first.click()
    row = page.locator("tr.log-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Missed by the incremental syncs (drift)")
    assert Article.objects.get(external_id=str(good[0])).title == (
        "Changed behind the plugin's back"
    )

    page.goto(connector.get_absolute_url() + "history/")
    expect(page.locator(".job-drift").first).to_contain_text("1 change missed by incremental syncs")

    notification = Notification.objects.get(external_id=str(draft))
    assert not notification.is_sendable
    page.goto(notification.get_absolute_url())
    expect(page.locator("h1 .badge")).to_have_text("Draft in WordPress: not published")
    screenshot(page, "draft-notification")
