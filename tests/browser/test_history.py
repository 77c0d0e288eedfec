"""Sync History in a real browser at laptop and phone widths, with three real syncs' counters:
on a laptop one column per counter that fits the card; on a phone one block per job with its
non-zero counters labelled ("Conflicts 1", "Archived 2"), nothing scrolling sideways."""

from pathlib import Path

from django.db import connection

from records.models import EntityType
from tests.dashboard.sync_history import run_history_syncs

from .conftest import login, screenshot

OVERFLOW_JS = (Path(__file__).parent / "overflow.js").read_text()
# Each visible counter of a row as [label, value]: the label is the cell's ::before (the
# phone's), or its column header (the laptop's).
ROW_COUNTERS_JS = """(row) => [...row.querySelectorAll('td.counter')]
  .filter((td) => td.getClientRects().length > 0)
  .map((td) => {
    const before = getComputedStyle(td, '::before').content;
    const label = before && before !== 'none' ? before.replace(/^"|\\s*"$/g, '')
      : row.closest('table').querySelectorAll('thead th')[td.cellIndex].textContent.trim();
    return [label, td.textContent.trim()];
  })"""


def expected(job):
    totals = job.totals()
    labels = ("Processed", "Created", "Updated", "Skipped", "Conflicts", "Archived", "Failed")
    pairs = [[label, str(totals.get(label.lower(), 0))] for label in labels]
    pushed = totals.get("pushed", 0)
    failed = totals.get("push_failed", 0)
    pairs.append(["Pushed", f"{pushed} ({failed} failed)" if failed else str(pushed)])
    return pairs


def test_history_counters_at_laptop_and_phone_width(chromium, live_server, alice, org_a):
    # Job numbers of a platform that has run for a while (seven digits, "Incremental sync
    # #1000002"): the Job column must wrap rather than push the counters off the card.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('syncjobs_syncjob', 'id'), 1000000)")
    connector, full, conflicts, pushes = run_history_syncs(org_a)
    assert full.pk > 1_000_000
    url = f"/o/{org_a.slug}/connectors/{connector.pk}/history/"
    for width, height in ((1280, 860), (390, 844)):
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        try:
            page = context.new_page()
            page.set_default_timeout(10_000)
            login(page, alice)
            page.goto(url)
            screenshot(page, f"history-counters-{width}")
            assert page.evaluate(OVERFLOW_JS, width >= 1000) == []
            for job in (full, conflicts, pushes):
                row = page.locator(f'tr[data-href="{job.get_absolute_url()}"]')
                shown = row.evaluate(ROW_COUNTERS_JS)
                want = expected(job)
                if width < 1000:
                    # The phone leaves zero counters out; every other one is labelled.
                    want = [pair for pair in want if pair[1] != "0"]
                assert shown == want, (width, job)
                if width < 1000:
                    # One block per job: it fits the screen, title and status on its top line.
                    box = row.bounding_box()
                    assert box["width"] <= width
                    title = row.locator("th").bounding_box()
                    status = row.locator(".badge").bounding_box()
                    assert abs(title["y"] - status["y"]) < 12, (title, status)
            if width < 1000:
                # The header row is for screen readers only on a phone.
                assert page.locator(".history-table thead").bounding_box()["height"] <= 1
        finally:
            context.close()


def test_overview_counters_on_a_phone_are_labelled_lines(chromium, live_server, alice, org_a):
    """The Overview's "Last job's counters" stacks on a phone like the history: each entity
    type on its own block with its labelled non-zero counters, so Failed is never scrolled
    out of sight."""
    connector, _full, _conflicts, pushes = run_history_syncs(org_a)
    labels = ("Created", "Updated", "Skipped", "Conflicts", "Failed", "Archived", "Pushed")
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, alice)
        page.goto(f"/o/{org_a.slug}/connectors/{connector.pk}/")
        screenshot(page, "overview-counters-390")
        assert page.evaluate(OVERFLOW_JS, False) == []
        rows = page.locator("#counters tbody tr")
        assert rows.count() == len(pushes.stats)
        for index, entity_type in enumerate([et for et in EntityType.values if et in pushes.stats]):
            counters = pushes.stats[entity_type]
            want = [[label, str(counters.get(label.lower()) or 0)] for label in labels]
            if counters.get("push_failed"):  # a refused push shows beside the pushed ones
                want[-1][1] += f" ({counters['push_failed']} failed)"
            nonzero = [pair for pair in want if pair[1] != "0"]
            assert rows.nth(index).evaluate(ROW_COUNTERS_JS) == (nonzero or want), entity_type
        totals = pushes.totals()
        footer = page.locator("#counters tfoot tr").evaluate(ROW_COUNTERS_JS)
        assert ["Failed", str(totals["failed"])] in footer or not totals.get("failed")
        assert ["Pushed", f"{totals['pushed']} ({totals['push_failed']} failed)"] in footer
    finally:
        context.close()
