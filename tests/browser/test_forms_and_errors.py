"""Forms returned with an error and error pages, in Chromium at laptop and phone widths: the
message sits beside the field it is about, what was typed stays (except the key), and a
missing page is one of ours with a way back."""

from pathlib import Path

import pytest

from connectors.models import Connector

from .conftest import login, screenshot

OVERFLOW_JS = (Path(__file__).parent / "overflow.js").read_text()
WIDTHS = [(1280, 860), (390, 844)]


@pytest.fixture(params=WIDTHS, ids=["laptop", "phone"])
def sized_page(request, chromium, live_server):
    width, height = request.param
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    # A 400 or 404 document is what these tests ask for; Chromium logs each as a console
    # error against the document's own URL. Anything else (a CSP block, a failed asset)
    # still fails the test.
    documents = set()
    page.on(
        "response",
        lambda r: documents.add(r.url) if r.request.resource_type == "document" else None,
    )
    page.on(
        "console",
        lambda msg: (
            errors.append((msg.text, msg.location.get("url"))) if msg.type == "error" else None
        ),
    )
    yield page, width
    context.close()
    unexpected = [
        (text, url)
        for text, url in errors
        if not (
            text.startswith("Failed to load resource: the server responded with a status of 4")
            and url in documents
        )
    ]
    assert not unexpected, unexpected


def _below(field, message):
    """The message starts just under the field, not elsewhere on the page."""
    box, note = field.bounding_box(), message.bounding_box()
    assert 0 <= note["y"] - (box["y"] + box["height"]) < 48, (box, note)
    assert abs(note["x"] - box["x"]) < 4, (box, note)


def test_delete_with_a_wrong_name_flags_the_box(sized_page, alice, connector_a):
    page, width = sized_page
    login(page, alice)
    page.goto(connector_a.get_absolute_url() + "delete/")
    box = page.get_by_label("Type Acme Association site to confirm")
    box.fill("Acme association site")
    page.get_by_role("button", name="Delete connector").click()
    page.wait_for_load_state()
    screenshot(page, f"delete-wrong-name-{width}")
    error = page.locator("#confirm_name_error")
    assert "type “Acme Association site” exactly" in error.inner_text()
    _below(box, error)
    assert box.input_value() == "Acme association site"
    assert box.get_attribute("aria-invalid") == "true"
    assert page.locator(".messages").count() == 0  # not a flash message above the page
    assert page.evaluate(OVERFLOW_JS, False) == []
    assert Connector.objects.filter(pk=connector_a.pk).exists()


def test_new_connector_asks_for_the_key_again_beside_it(sized_page, alice, org_a):
    page, width = sized_page
    login(page, alice)
    page.goto(f"/o/{org_a.slug}/connectors/new/")
    page.get_by_label("Name").fill("Main site")
    page.get_by_label("Site URL").fill("ftp://www.example.org")
    page.get_by_label("Sync API key").fill("typed-key-000111222")
    page.get_by_role("button", name="Create connector").click()
    page.wait_for_load_state()
    screenshot(page, f"create-key-again-{width}")
    assert page.get_by_label("Name").input_value() == "Main site"
    assert page.get_by_label("Site URL").input_value() == "ftp://www.example.org"
    key = page.get_by_label("Sync API key")
    assert key.input_value() == ""
    note = page.locator("#id_api_key_helptext")
    assert note.inner_text().startswith("Nothing was saved, so paste the key again")
    _below(key, note)
    assert "typed-key-000111222" not in page.content()
    assert page.evaluate(OVERFLOW_JS, False) == []


def test_a_missing_page_is_ours_with_a_way_back(sized_page, alice, connector_b):
    page, width = sized_page
    login(page, alice)
    response = page.goto(connector_b.get_absolute_url())  # another organisation's
    assert response.status == 404
    screenshot(page, f"not-found-{width}")
    assert page.get_by_role("heading", level=1).inner_text() == "Page not found"
    assert page.locator(".topbar").is_visible()
    back = page.get_by_role("link", name="Back to your connectors")
    box = back.bounding_box()
    assert box["y"] + box["height"] <= 844 and box["x"] + box["width"] <= width  # in sight
    back.click()
    page.wait_for_load_state()
    assert page.url.endswith("/o/acme/connectors/")
    assert page.evaluate(OVERFLOW_JS, False) == []


# The width of an input's placeholder in its own font, against the room inside the box.
PLACEHOLDER_FITS_JS = """(input) => {
  const style = getComputedStyle(input);
  const context = document.createElement('canvas').getContext('2d');
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return [context.measureText(input.placeholder).width, room];
}"""


def test_the_key_box_placeholder_reads_whole(sized_page, alice, connector_a):
    page, width = sized_page
    login(page, alice)
    page.goto(connector_a.get_absolute_url() + "settings/")
    key = page.get_by_label("Sync API key")
    key.scroll_into_view_if_needed()
    screenshot(page, f"settings-key-box-{width}", full_page=False)
    assert key.get_attribute("placeholder").startswith("A key is stored")
    text, room = key.evaluate(PLACEHOLDER_FITS_JS)
    assert text <= room, f"placeholder is {text:.0f}px in a {room:.0f}px box"


@pytest.mark.parametrize("name", ["Acme Association site", "Acme " + "Association " * 9 + "site"])
def test_the_actions_menu_opens_on_screen(sized_page, alice, connector_a, name):
    """The ⋯ menu on a phone, or under a name long enough to wrap the header: every item in
    sight and usable (it opened leftwards off the screen, Pause and Delete unreachable)."""
    Connector.objects.filter(pk=connector_a.pk).update(name=name)
    page, width = sized_page
    login(page, alice)
    page.goto(connector_a.get_absolute_url())
    page.get_by_label("More actions").click()
    screenshot(page, f"actions-menu-{width}-{len(name)}", full_page=False)
    for item in (
        page.get_by_role("button", name="Pause Sync"),
        page.get_by_role("link", name="Delete…"),
    ):
        box = item.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (item, box)
    page.get_by_role("button", name="Pause Sync").click()
    page.wait_for_load_state()
    assert page.locator("h1 .badge").inner_text() == "Paused"
    assert page.evaluate(OVERFLOW_JS, False) == []
