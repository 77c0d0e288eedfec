"""Pages on a phone (390 px): each table row one block whose figures and messages are in
sight, not in columns scrolled off the right edge or squeezed to a few letters per line."""

import re
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from connectors.models import Connector
from syncjobs.models import SyncLogEntry
from tests.dashboard.conftest import make_job
from tests.dashboard.sync_history import run_history_syncs

from .conftest import login, screenshot

OVERFLOW_JS = (Path(__file__).parent / "overflow.js").read_text()
LABEL_JS = "(el) => getComputedStyle(el, '::before').content"


def test_connectors_list_stacks_on_a_phone(chromium, live_server, alice, connector_a):
    now = timezone.now()
    make_job(connector_a, started_at=now - timedelta(minutes=1), finished_at=now)
    Connector.objects.filter(pk=connector_a.pk).update(next_sync_at=now + timedelta(minutes=14))
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, alice)
        page.goto(f"/o/{connector_a.organisation.slug}/connectors/")
        screenshot(page, "phone-connectors-list")
        assert page.evaluate(OVERFLOW_JS, False) == []
        wrap = page.locator(".table-wrap")
        assert wrap.evaluate("(el) => el.scrollWidth <= el.clientWidth")  # nothing off-screen
        row = page.locator("tbody tr").first
        last, following = (
            row.locator("td[data-label='Last attempt:']"),
            row.locator("td[data-label='Next sync:']"),
        )
        assert last.evaluate(LABEL_JS) == '"Last attempt: "'
        assert following.evaluate(LABEL_JS) == '"Next sync: "'
        # humanize's naturaltime: "now", "5 seconds ago", "a minute ago".
        assert "Completed" in last.inner_text()
        assert re.search(r"\bnow\b|seconds? ago|a minute ago", last.inner_text())
        assert following.inner_text().startswith("in 1")
        for cell in (last, following):
            box = cell.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert not row.locator("td.hide-phone").is_visible()  # the Type column stays hidden
    finally:
        context.close()


def test_job_page_on_a_phone_shows_each_failed_record_in_full(chromium, live_server, alice, org_a):
    """A real full sync's failed rows at 390 px: each log row one block whose error reads in
    full on the screen (it used to be a column squeezed to a few letters per line, off to the
    right), and each entity type's bar spans the card."""
    _connector, full, _conflicts, _pushes = run_history_syncs(org_a)
    failed = SyncLogEntry.objects.filter(job=full, status="FAILED").order_by("-id")
    assert failed.count() >= 2
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, alice)
        page.goto(full.get_absolute_url() + "?status=FAILED")
        screenshot(page, "phone-job-failed-rows")
        assert page.evaluate(OVERFLOW_JS, False) == []
        rows = page.locator("#job-log tbody tr")
        assert rows.count() == failed.count()
        for index, entry in enumerate(failed):
            row = rows.nth(index)
            details = row.locator(".log-details")
            assert details.inner_text() == entry.error
            box, row_box = details.bounding_box(), row.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            assert box["width"] > 300, box  # the error has the row's width, not a sliver
            assert row_box["height"] < 220, row_box
            assert row.locator(".log-type").inner_text() == entry.get_entity_type_display()
            assert row.locator("td:nth-child(2)").evaluate(LABEL_JS) == '"ID "'
            assert row.locator(".log-int").is_hidden()  # no record was written: no "—" line
        for bar in page.locator("#job-status tbody progress").all():
            assert bar.bounding_box()["width"] > 250
        failed_counter = page.locator("#job-status tbody tr", has_text="Article").locator(
            "td[data-label='Failed']"
        )
        assert failed_counter.evaluate(LABEL_JS) == '"Failed "'
        assert failed_counter.inner_text() == str(full.stats["article"]["failed"])
    finally:
        context.close()


def test_activity_on_a_phone_keeps_every_status_in_sight(chromium, live_server, alice, org_a):
    """The feed's five columns squeezed every event to several lines and pushed the status
    off screen; now each event is one block, its record's error across the screen."""
    connector, _full, _conflicts, _pushes = run_history_syncs(org_a)
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, alice)
        page.goto(f"/o/{org_a.slug}/connectors/{connector.pk}/activity/")
        screenshot(page, "phone-activity")
        assert page.evaluate(OVERFLOW_JS, False) == []
        assert page.locator(".table-wrap").evaluate("(el) => el.scrollWidth <= el.clientWidth")
        rows = page.locator("tbody tr")
        assert rows.count() > 10
        for index in range(rows.count()):
            badge = rows.nth(index).locator(".act-status .badge").bounding_box()
            assert badge["x"] >= 0 and badge["x"] + badge["width"] <= 390, (index, badge)
            assert rows.nth(index).bounding_box()["height"] < 300, index
        assert rows.first.locator(".act-job").evaluate(LABEL_JS) == '"Job "'
        # The pushes job's refused push and conflicts carry messages, on the first page.
        errors = page.locator(".act-record .error-text")
        assert errors.count() >= 1
        for index in range(errors.count()):
            assert errors.nth(index).bounding_box()["width"] > 300, index
    finally:
        context.close()


def test_platform_connectors_on_a_phone(chromium, live_server, root, connector_a, connector_b):
    """Every organisation's connectors at 390 px: one block per connector (organisation, name,
    status, last and next sync in sight) and the column headers kept as a bar of sort links."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, root)
        page.goto("/platform/connectors/")
        screenshot(page, "phone-platform-connectors")
        assert page.evaluate(OVERFLOW_JS, False) == []
        assert page.locator(".table-wrap").evaluate("(el) => el.scrollWidth <= el.clientWidth")
        rows = page.locator("tbody tr")
        assert rows.count() == 2
        for index in range(2):
            row = rows.nth(index)
            for cell in (
                row.locator(".pf-status .badge"),
                row.locator("[data-label='Next sync:']"),
            ):
                box = cell.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            assert not row.locator("td.hide-phone").is_visible()
        sort_by_name = page.locator("thead a", has_text="Name")
        assert sort_by_name.is_visible()
        sort_by_name.click()
        page.wait_for_url("**sort=name**")
        names = [rows.nth(i).locator("th").inner_text() for i in range(2)]
        assert names == sorted(names)
    finally:
        context.close()
