"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's sync API) against
pytest-django's live_server.

Fixtures for every browser test: `browser_page` (a fresh context and page on the live server,
failing the test on any console error, page error or CSP violation), `walk` (the same
collector, read page by page as a test walks through the product) and `login(page, user)`.
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made from the
# test body (creating rows, flipping job statuses) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import expect, sync_playwright

from tests.conftest import PASSWORD
from tests.dashboard.conftest import make_job

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


# Every page listens for CSP violations from before its first script runs, so a violation
# that Chromium does not print, or prints only as a warning, is caught too.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") + " (" +
    (event.sample || "no sample") + ") at " + event.sourceFile + ":" + event.lineNumber
  );
});
"""


class Walk:
    """A browser context on the live server whose page reports CSP violations, console
    errors and page errors; finish() fails the test on any."""

    def __init__(self, chromium, base_url):
        self.context = chromium.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 860}, locale="en-GB"
        )
        self.context.add_init_script(COLLECT_VIOLATIONS)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.problems: list[str] = []
        self.expected_status = None  # a 404/500 page's own "Failed to load resource"
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _console(self, message):
        if message.type != "error":
            return
        if self.expected_status and message.text.startswith(
            f"Failed to load resource: the server responded with a status of {self.expected_status}"
        ):
            return  # the document's own status, which the test asked for
        self.problems.append(f"console: {message.text} at {message.location.get('url')}")

    def collect(self):
        """The violations of the page now open (a navigation starts a new list)."""
        found = self.page.evaluate("window.__cspViolations || []")
        self.problems.extend(f"CSP at {self.page.url}: {v}" for v in found)

    def visit(self, url, status=None):
        self.collect()
        self.expected_status = status
        response = self.page.goto(url)
        assert response.status == (status or 200), (url, response.status)
        expect(self.page.locator("main")).to_be_visible()
        # Let deferred scripts and the first htmx processing run before reading the list.
        self.page.wait_for_load_state("load")
        self.collect()

    def finish(self):
        """Close the browser context and fail on anything collected on the way."""
        if self.context is not None:
            self.collect()
            self.context.close()
            self.context = None
        problems, self.problems = self.problems, []
        assert not problems, "CSP violations / console errors:\n" + "\n".join(problems)


@pytest.fixture
def walk(chromium, live_server):
    walking = Walk(chromium, live_server.url)
    yield walking
    if walking.context is not None:  # the test stopped before its end
        walking.context.close()


@pytest.fixture
def browser_page(chromium, live_server):
    walking = Walk(chromium, live_server.url)
    yield walking.page
    walking.finish()


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


def job_history(connector, n=12, failed=5):
    """`n` finished jobs an hour apart, the newest last; job `failed` (0-based) FAILED with an
    HTTP 503, the others COMPLETED, every other one with a failed article."""
    now = timezone.now()
    jobs = []
    for i in range(n):
        start = now - timedelta(hours=n - i)
        jobs.append(
            make_job(
                connector,
                status="FAILED" if i == failed else "COMPLETED",
                error="HTTP 503 from the site." if i == failed else "",
                created_at=start,
                started_at=start,
                finished_at=start + timedelta(seconds=20 + i),
                stats={
                    "article": {"processed": 50 + i, "failed": i % 2},
                    "member": {"processed": 9},
                },
            )
        )
    return jobs
