"""The connectors list on a phone: each connector one block whose last and next sync are in
sight, not in columns scrolled off the right edge of a 390 px screen."""

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from connectors.models import Connector
from tests.dashboard.conftest import make_job

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
            row.locator("td[data-label='Last sync:']"),
            row.locator("td[data-label='Next sync:']"),
        )
        assert last.evaluate(LABEL_JS) == '"Last sync: "'
        assert following.evaluate(LABEL_JS) == '"Next sync: "'
        assert "Completed" in last.inner_text() and "just now" in last.inner_text()
        assert following.inner_text().startswith("in 1")
        for cell in (last, following):
            box = cell.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert not row.locator("td.hide-phone").is_visible()  # the Type column stays hidden
    finally:
        context.close()
