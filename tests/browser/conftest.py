"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's sync API) against
pytest-django's live_server.

Fixtures for every browser test, including the lead's future "real sync against the
simulator" flow: `browser_page` (a fresh context and page on the live server, failing the
test on any console error — CSP violations included) and `login(page, user)`.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made from the
# test body (creating rows, flipping job statuses) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import sync_playwright

from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)


# One Playwright driver and one Chromium per test session. Other test packages import these
# fixtures (`from tests.browser.conftest import chromium, ...`), which makes pytest hold one
# session fixture per importing module; a second sync_playwright() in the same process fails
# ("Sync API inside the asyncio loop"), so every copy shares this one, reference-counted.
_shared = {"users": 0, "playwright": None, "browser": None}


@pytest.fixture(scope="session")
def chromium():
    if _shared["browser"] is None:
        _shared["playwright"] = sync_playwright().start()
        _shared["browser"] = _shared["playwright"].chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
    _shared["users"] += 1
    yield _shared["browser"]
    _shared["users"] -= 1
    if _shared["users"] == 0:
        _shared["browser"].close()
        _shared["playwright"].stop()
        _shared["browser"] = _shared["playwright"] = None


@pytest.fixture
def browser_page(chromium, live_server):
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, locale="en-GB"
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems = []
    page.on(
        "console",
        lambda msg: (
            problems.append(f"{msg.text} at {msg.location}") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    assert not problems, f"Browser console errors: {problems}"


# htmx polls (`hx-trigger="every 4s"`) run on the page's timers. A test that installed
# Playwright's clock (`page.clock.install()` before the page loads; time then flows as usual)
# brings the next poll, or several, now with `next_poll(page)` instead of waiting for them:
# every timer due within `seconds` fires at once.
POLL_SECONDS = 4


def next_poll(page, seconds: float = POLL_SECONDS) -> None:
    page.clock.fast_forward(int(seconds * 1000))


def login(page, user, password=PASSWORD):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, "login failed"


def screenshot(page, name, full_page=True):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret makes Playwright inject a <style>, which our CSP
    # (style-src 'self') rightly blocks and reports as a console error.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, caret="initial")
