"""Platform → Connectors in headless Chromium: htmx filtering without a reload, the URL that
follows it (shareable, Back works), and the row click into the organisation's context."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import browser_page, chromium, login, screenshot  # noqa: F401

pytestmark = pytest.mark.browser


def names(page):
    return page.locator("#connector-table tbody th[scope=row]")


def test_filter_sort_back_and_drill_down(browser_page, root, platform):  # noqa: F811
    page = browser_page
    login(page, root)
    page.get_by_role("link", name="Platform → Connectors").click()
    expect(page.get_by_role("heading", name="Connectors of every organisation")).to_be_visible()
    expect(page.locator('[data-stat="total"] .stat-value')).to_have_text("5")
    expect(names(page)).to_have_count(5)
    screenshot(page, "platform-connectors")
    # A marker that only survives if the page is never reloaded.
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Search").fill("acme")
    expect(names(page)).to_have_text(["Acme archive", "Acme Association site"])
    expect(page).to_have_url(re.compile(r"/platform/connectors/\?q=acme$"))
    page.get_by_label("Status").select_option("ERROR")
    expect(names(page)).to_have_text(["Acme archive"])
    expect(page).to_have_url(re.compile(r"\?q=acme&status=ERROR$"))
    assert page.evaluate("window.notReloaded") is True

    # Sorting keeps the filters, and the next search keeps the sort.
    page.get_by_label("Status").select_option("")
    expect(names(page)).to_have_count(2)
    header = page.locator("#connector-table thead")
    header.get_by_role("link", name="Name").click()
    expect(page.locator('th[aria-sort="ascending"]')).to_contain_text("Name")
    expect(page).to_have_url(re.compile(r"\?q=acme&sort=name$"))
    header.get_by_role("link", name="Name").click()
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Name")
    expect(names(page)).to_have_text(["Acme Association site", "Acme archive"])
    expect(page).to_have_url(re.compile(r"\?q=acme&sort=-name$"))
    page.get_by_label("Search").fill("e")
    expect(names(page)).to_have_count(5)
    expect(names(page).first).to_have_text("Umbrella blog")  # still sorted by name, descending
    expect(page).to_have_url(re.compile(r"\?q=e&sort=-name$"))
    assert page.evaluate("window.notReloaded") is True

    # Back restores the previous filters and their table.
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?q=acme&sort=-name$"))
    expect(names(page)).to_have_text(["Acme Association site", "Acme archive"])

    # A click anywhere on a row opens the connector in its organisation's context.
    page.locator("#connector-table tr", has_text="Acme archive").get_by_text(
        "Acme Association", exact=True
    ).click()
    archive = platform["archive"]
    expect(page).to_have_url(re.compile(rf"/o/acme/connectors/{archive.pk}/$"))
    banner = page.locator(".context-banner")
    expect(banner).to_contain_text("Viewing as platform admin · organisation Acme Association")
    banner.get_by_role("link", name="Back to all connectors").click()
    expect(page).to_have_url(re.compile(r"/platform/connectors/$"))


def test_filters_work_without_javascript(chromium, live_server, root, platform):  # noqa: F811
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        login(page, root)
        page.goto("/platform/connectors/")
        page.get_by_label("Search").fill("globex")
        page.get_by_label("Status").select_option("PAUSED")
        page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(r"\?q=globex&status=PAUSED&kind=&health=$"))
        expect(names(page)).to_have_text(["Globex Guild site"])
    finally:
        context.close()
