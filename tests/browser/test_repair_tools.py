"""The repair tools in headless Chromium: Retry failed records, Preview sync, the deletion
guard's review, the conflict inbox, and "Sync this record" from mapping diagnostics."""

import re

from django.urls import reverse
from playwright.sync_api import expect

from records.models import Article, Member
from syncjobs.models import HeldDeletion, SyncJob, SyncLogEntry
from syncjobs.runner import run_job
from tests.conftest import simulated_connector
from tests.dashboard.conftest import make_job, make_log
from tests.engine.conftest import SIM_KEY, site  # noqa: F401  (a fixture)
from tests.reliability.conftest import make_record

from .conftest import login, screenshot


def test_retry_button_starts_a_retry_job(browser_page, alice, connector_a):
    page = browser_page
    job = make_job(connector_a)
    make_log(job, 3, entity_type="member", status="FAILED", error="member: email is null")
    login(page, alice)
    page.goto(job.get_absolute_url())
    page.get_by_role("button", name="Retry failed records").click()
    expect(page.locator(".messages")).to_contain_text(f"Retry of job #{job.pk}'s failed records")
    retry = SyncJob.objects.get(status="PENDING")
    expect(page).to_have_url(re.compile(f"/jobs/{retry.pk}/$"))
    expect(page.locator("h1")).to_contain_text(f"Retry of job #{job.pk}'s failed records")
    assert retry.scope["records"] == {"member": ["1000", "1001", "1002"]}
    screenshot(page, "retry-job")


def test_preview_from_the_overview_shows_what_a_full_sync_would_do(
    browser_page,
    alice,
    org_a,
    site,  # noqa: F811
    server,
):
    page = browser_page
    connector = simulated_connector(
        org_a, server, SIM_KEY, name="Preview site", entity_types=["member"]
    )
    login(page, alice)
    page.goto(connector.get_absolute_url())
    page.get_by_role("button", name="Preview sync").click()
    expect(page.locator("h1")).to_contain_text("Preview of a full sync (nothing written)")
    preview = SyncJob.objects.get(dry_run=True)
    run_job(preview.pk)  # the worker's part, in this process
    page.reload()
    card = page.locator("section", has_text="Preview: what a full sync would do")
    expect(card).to_contain_text("First member failures")
    expect(card).to_contain_text("email")
    expect(page.locator("main")).to_contain_text(str(site.count("member") - 1))
    assert not Member.objects.exists() and not SyncLogEntry.objects.exists()
    screenshot(page, "preview-job")


def test_held_deletions_are_reviewed_from_the_overview(browser_page, alice, connector_a):
    page = browser_page
    job = make_job(connector_a, error="2 deletions held for review")
    for external_id in ("41", "42"):
        make_record("member", connector_a, external_id=external_id)
    HeldDeletion.objects.create(
        connector=connector_a, job=job, entity_type="member", external_ids=["41", "42"]
    )
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    page.get_by_role("link", name="Review them").click()
    page.get_by_role("button", name="Discard: keep them").click()
    expect(page.locator(".messages")).to_contain_text("2 member records kept.")
    expect(page.locator("table")).to_contain_text("Discarded: kept by alice")
    assert Member.objects.filter(archived_at__isnull=True).count() == 2


def test_conflict_inbox_takes_wordpress_version_for_a_selection(
    browser_page,
    alice,
    org_a,
    site,  # noqa: F811
    server,
):
    from tests.dashboard.test_conflict_inbox import make_conflicts

    page = browser_page
    connector, ids = make_conflicts(org_a, site, server, n=2)
    login(page, alice)
    page.goto(connector.get_absolute_url())
    page.get_by_role("link", name="Open the conflict inbox").click()
    expect(page.locator("h2", has_text="Conflict inbox")).to_contain_text("(2)")
    first = page.get_by_role("article", name=f"Conflict on article {ids[0]}")
    expect(first).to_contain_text("Edited on the platform")
    expect(first).to_contain_text(site.record("article", ids[0])["title"])
    screenshot(page, "conflict-inbox")
    for article_id in ids:
        page.get_by_role("article", name=f"Conflict on article {article_id}").get_by_role(
            "checkbox"
        ).check()
    page.get_by_role("button", name="Take WordPress version").click()
    expect(page.locator(".messages")).to_contain_text("2 conflicts resolved")
    expect(page.locator("h2", has_text="Conflict inbox")).to_contain_text("(0)")
    job = SyncJob.objects.get(status="PENDING")
    assert set(job.scope["records"]["article"]) == {str(i) for i in ids}
    run_job(job.pk)
    assert not Article.objects.filter(title="Edited on the platform").exists()


def test_mapping_diagnostics_syncs_the_record_it_checked(
    browser_page,
    alice,
    org_a,
    site,  # noqa: F811
    server,
):
    page = browser_page
    connector = simulated_connector(
        org_a, server, SIM_KEY, name="Mapping site", entity_types=["member"]
    )
    member_id = next(i for i in site.ids("member") if i not in site.bad_ids("member"))
    login(page, alice)
    page.goto(reverse("diagnostics:mapping", args=[org_a.slug, connector.pk]))
    page.get_by_label("Entity type").select_option("member")
    page.get_by_label("WordPress ID", exact=True).fill(str(member_id))
    page.get_by_role("button", name="Check mapping").click()
    report = page.locator("#mapping-member")
    expect(report).to_contain_text(f"WordPress ID {member_id}")
    expect(report).to_contain_text("This record would sync.")
    report.get_by_role("button", name="Sync this record").click()

    expect(page.locator("h1")).to_contain_text(f"Sync of member {member_id}")
    job = SyncJob.objects.get(status="PENDING")
    expect(page).to_have_url(re.compile(f"/jobs/{job.pk}/$"))
    assert job.scope == {"records": {"member": [str(member_id)]}}
    run_job(job.pk)  # the worker's part, in this process; the open page follows it live
    rows = page.locator("#job-log tr.log-row")
    expect(rows).to_have_count(1, timeout=20_000)
    expect(rows.first).to_contain_text(str(member_id))
    expect(rows.first).to_contain_text("Create")
    expect(rows.first).to_contain_text("Success")
    assert Member.objects.filter(connector=connector, external_id=str(member_id)).count() == 1
    screenshot(page, "sync-one-record-from-mapping")
