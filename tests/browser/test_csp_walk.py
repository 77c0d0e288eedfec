"""The CSP stays strict and the console stays clean across the whole product: every page an
organisation admin, a platform admin and a visitor open, with their htmx moments (a job that
finishes while its page is open, filters, forms answered with errors), and the error pages.

The `walk` fixture (tests/browser/conftest.py) collects CSP violations, console errors and
page errors page by page. The module is also the URL conf of its 500 test (`urlpatterns`
below): the product's URLs plus one view that crashes.
"""

import re

from django.urls import path
from django.utils import timezone
from playwright.sync_api import expect

from config.urls import urlpatterns as product_urlpatterns
from records.models import Article
from syncjobs.models import HeldDeletion, SyncJob
from tests.dashboard.conftest import make_job, make_log

from .conftest import job_history, login


def _crash(request):
    raise RuntimeError("a crash, for the 500 page")


urlpatterns = [*product_urlpatterns, path("test-crash/", _crash)]


def _history(connector):
    jobs = job_history(connector, 6, failed=2)
    make_log(jobs[-1], 4, start=1)
    make_log(jobs[-1], 2, start=50, status="FAILED", error="Title is required")
    make_log(jobs[-1], 3, start=100, operation="SKIP", status="SKIPPED")
    return jobs


def test_every_page_keeps_the_csp_without_a_violation(walk, settings, alice, root, connector_a):
    page = walk.page
    jobs = _history(connector_a)
    preview = make_job(
        connector_a, dry_run=True, stats={"article": {"processed": 3, "would_create": 3}}
    )
    record = Article.objects.create(
        organisation=connector_a.organisation,
        connector=connector_a,
        external_id="77",
        title="A styled article",
        content='<p style="color:red" onclick="steal()">Styled paragraph</p>',
    )
    base = f"/o/acme/connectors/{connector_a.pk}"
    # The conflict inbox and the held deletions with something to decide, not only empty.
    make_log(jobs[-1], 1, start=77, operation="UPDATE", status="CONFLICT", error="Edited on both")
    HeldDeletion.objects.create(
        connector=connector_a,
        job=jobs[-1],
        entity_type="article",
        external_ids=["77"],
        live_count=1,
    )

    # A visitor: the login page, and a failed login's error. First, the listener works: an
    # inline style added to the page is reported (and then forgotten).
    walk.visit("/accounts/login/")
    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<b style="color:red">x</b>')""")
    page.wait_for_function("window.__cspViolations.length > 0")
    assert "style-src" in page.evaluate("window.__cspViolations[0]")
    page.evaluate("window.__cspViolations = []")
    walk.problems.clear()  # Chromium printed it to the console as well
    page.get_by_label("Username").fill(alice.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_be_visible()
    walk.collect()

    login(page, alice)
    for url in (
        "/o/acme/connectors/",
        "/o/acme/connectors/new/",
        "/o/acme/connectors/activity/",
        "/o/acme/connectors/audit/",
        f"{base}/",
        f"{base}/history/",
        f"{base}/activity/",
        f"{base}/activity/?skips=1&status=FAILED",
        f"{base}/audit/",
        f"{base}/settings/",
        f"{base}/diagnostics/connection-test/",
        f"{base}/diagnostics/mapping/",
        f"{base}/delete/",
        jobs[-1].get_absolute_url(),
        jobs[-1].get_absolute_url() + "?status=FAILED",
        jobs[2].get_absolute_url(),
        preview.get_absolute_url(),
        f"/o/acme/records/article/{record.pk}/",
        "/o/acme/notifications/",
    ):
        walk.visit(url)

    # The record page does not wait for WordPress: its comparison card loads itself and says
    # in words that the site (an address that does not resolve here) could not be asked.
    walk.visit(f"/o/acme/records/article/{record.pk}/")
    card = page.locator("#record-values")
    expect(card.locator(".error-text")).to_contain_text("WordPress could not be asked")
    expect(card.locator("table.table-values tbody tr").first).to_be_visible()
    expect(page.locator("#record-values[aria-busy]")).to_have_count(0)
    walk.collect()

    # A conflict (WordPress cannot be asked here) and a held deletion, each with its buttons.
    walk.visit(f"{base}/conflicts/")
    expect(page.get_by_role("article", name="Conflict on article 77")).to_be_visible()
    walk.visit(f"{base}/held-deletions/")
    expect(page.get_by_text("Approve: archive 1")).to_be_visible()
    walk.collect()

    # Charts' "The numbers" open; a log filter through htmx.
    walk.visit(f"{base}/")
    for summary in page.locator("summary", has_text="The numbers").all():
        summary.click()
    walk.visit(jobs[-1].get_absolute_url())
    page.locator("#f-status").select_option("FAILED")
    expect(page).to_have_url(re.compile(r"status=FAILED"))
    walk.collect()

    # Forms answered with errors: a connector without a name or site, settings with a bad
    # address, a webhook that is no URL (htmx), a delete with the wrong name.
    walk.visit("/o/acme/connectors/new/")
    page.get_by_role("button", name="Create connector").click()
    expect(page.locator(".field-error").first).to_be_visible()
    walk.collect()
    walk.visit(f"{base}/settings/")
    page.get_by_label("Site URL").fill("not a site")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".form-error")).to_be_visible()
    walk.collect()
    walk.visit("/o/acme/notifications/")
    page.locator("#webhooks").get_by_label("URL").fill("no url")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhooks .field-error")).to_be_visible()
    walk.collect()
    walk.visit(f"{base}/delete/")
    page.locator("input[name=confirm_name]").fill("wrong")
    walk.expected_status = 400  # the form's answer: Bad Request, the connector kept
    page.locator("input[name=confirm_name]").press("Enter")
    expect(page.locator(".field-error")).to_be_visible()
    walk.collect()

    # A job RUNNING on its page, whose log fills in, then finishes while the page is open.
    running = make_job(
        connector_a, status="RUNNING", stats={"article": {"total": 9, "processed": 3}}
    )
    walk.visit(running.get_absolute_url())
    make_log(running, 2, start=500)
    expect(page.locator("#job-log tbody tr:visible")).to_have_count(2, timeout=9_000)
    SyncJob.objects.filter(pk=running.pk).update(
        status="COMPLETED",
        finished_at=timezone.now(),
        stats={"article": {"total": 9, "processed": 9, "failed": 1}},
    )
    expect(page.locator("#job-status .card-header .badge")).to_contain_text(
        "Completed", timeout=9_000
    )
    # The log reloads on the job-finished event: a finished job's log has no live row.
    expect(page.locator("#log-live")).to_have_count(0, timeout=9_000)
    walk.collect()

    # Error pages: another organisation's connector (404), and a crash (500).
    walk.visit("/o/acme/connectors/999999/", status=404)
    settings.ROOT_URLCONF = __name__
    walk.visit("/test-crash/", status=500)
    settings.ROOT_URLCONF = "config.urls"

    # The platform admin: Platform → Connectors, its htmx filters and sort, a drill-down.
    page.context.clear_cookies()
    login(page, root)
    walk.visit("/platform/connectors/")
    page.get_by_label("Search").fill("acme")
    expect(page).to_have_url(re.compile(r"q=acme"))
    page.locator("#connector-table th a", has_text="Status").click()
    expect(page).to_have_url(re.compile(r"sort=status"))
    page.go_back()  # htmx restores the previous table from its history cache
    expect(page).to_have_url(re.compile(r"q=acme$"))
    walk.collect()
    walk.visit("/platform/connectors/?health=failing")
    walk.visit(f"{base}/")
    walk.visit(jobs[-1].get_absolute_url())
    # Django admin, which platform admins use to lift lockouts and look at rows.
    for url in (
        "/admin/",
        "/admin/connectors/connector/",
        f"/admin/connectors/connector/{connector_a.pk}/change/",
        "/admin/syncjobs/syncjob/",
        f"/admin/syncjobs/syncjob/{jobs[-1].pk}/change/",
    ):
        walk.page.goto(url)
        walk.page.wait_for_load_state("load")
        walk.collect()
    walk.finish()
