"""A running job's status card polls every 4 s, but not from a tab nobody looks at: while the
page is hidden no poll reaches the server, and the card refreshes at once when it is shown."""

import time

from syncjobs.models import SyncJob
from tests.dashboard.conftest import make_job

from .conftest import login

# Headless Chromium shows every page; this makes `document.hidden` follow window.__hidden.
HIDE_JS = """(hidden) => {
  if (!window.__hiddenPatched) {
    Object.defineProperty(document, 'hidden', {
      configurable: true, get: () => window.__hidden === true,
    });
    window.__hiddenPatched = true;
  }
  window.__hidden = hidden;
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_job_status_does_not_poll_from_a_hidden_tab(browser_page, alice, connector_a):
    # The waits below are real time passing, which is what this test is about: what a tab
    # does (or does not) ask over whole poll intervals. Moving the page's clock instead (as the
    # other polling tests do) let a poll through to the hidden tab, so real time it stays.
    page = browser_page
    job = make_job(connector_a, status="RUNNING", stats={"article": {"total": 10, "processed": 2}})
    polls = []
    page.on(
        "request",
        lambda request: polls.append(time.monotonic()) if "/status/" in request.url else None,
    )
    login(page, alice)
    page.goto(job.get_absolute_url())
    page.wait_for_timeout(4_600)  # one poll interval and a little
    assert len(polls) >= 1  # a visible page polls

    page.evaluate(HIDE_JS, True)
    hidden_at = len(polls)
    SyncJob.objects.filter(pk=job.pk).update(stats={"article": {"total": 10, "processed": 7}})
    page.wait_for_timeout(9_000)  # two poll intervals and more
    assert len(polls) == hidden_at, "a hidden tab polled"
    assert "2 / 10" in page.locator("#job-status").inner_text()

    shown = time.monotonic()
    page.evaluate(HIDE_JS, False)
    page.locator("#job-status", has_text="7 / 10").wait_for(timeout=2_000)
    assert len(polls) > hidden_at and polls[hidden_at] - shown < 1.5  # at once, not in 4 s

    # It keeps polling while visible, and stops by itself when the job ends.
    SyncJob.objects.filter(pk=job.pk).update(status="COMPLETED")
    page.locator("#job-status .badge", has_text="Completed").wait_for(timeout=6_000)
    ended = len(polls)
    page.wait_for_timeout(4_600)  # a poll interval without a poll
    assert len(polls) == ended
