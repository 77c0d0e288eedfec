"""Mapping diagnostics on a phone: each field is one block of labelled values, and nothing
scrolls sideways (the table used to, inside its card)."""

from playwright.sync_api import expect

from tests.conftest import make_connector

from .conftest import login, screenshot
from .test_layout import KEY, simulator  # noqa: F401 (a fixture)


def test_mapping_diagnostics_fit_a_phone(browser_page, alice, org_a, simulator):  # noqa: F811
    _site, server = simulator
    connector = make_connector(
        org_a, site_url=server.url, api_key=KEY, entity_types=["article", "member", "event"]
    )
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, alice)
    page.goto(f"/o/acme/connectors/{connector.pk}/diagnostics/mapping/")
    page.get_by_role("button", name="Check mapping").click()
    table = page.locator("table.mapping-table").first
    expect(table).to_be_visible()
    sizes = table.evaluate(
        "(t) => [t.scrollWidth, t.clientWidth, document.documentElement.scrollWidth]"
    )
    assert sizes[0] <= sizes[1] + 1 and sizes[2] <= 390, sizes
    raw = table.locator("td.raw-value").first
    label = raw.evaluate("(td) => getComputedStyle(td, '::before').content")
    assert "Raw value in WordPress" in label
    screenshot(page, "mapping-phone")
