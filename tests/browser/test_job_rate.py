"""The job page says how fast the sync ran against the site, and when the site's announced
rate limit held it back (issue 17): a real paced sync against the simulator, then the page in
headless Chromium."""

import re
import time

from playwright.sync_api import expect

from connectors.wordpress_client import client_for
from syncjobs import services
from syncjobs.models import SyncJob
from syncjobs.runner import run_job
from tests.conftest import make_connector
from wpsim import SimulatedSite, serve

from .conftest import login

KEY = "browser-rate-sync-key-0123456789abcdefghijkl"


def run_sync(connector) -> SyncJob:
    """The job as the worker runs it, with a client that really waits."""
    job = services.start_sync(connector, SyncJob.Kind.FULL)
    with client_for(connector, sleep=time.sleep) as client:
        return run_job(job.pk, source=client)


def test_the_job_page_shows_the_rate_and_the_sites_limit_it_was_paced_to(
    browser_page, alice, org_a, settings
):
    settings.SYNC_PAGE_SIZE = 5
    # 10 requests per second (600 a minute): the sync's ~20 requests are paced.
    site = SimulatedSite(records=80, seed=5, key=KEY, rate_limit=10, rate_window=1)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, name="Paced site", site_url=server.url, api_key=KEY, entity_types=["article"]
        )
        job = run_sync(connector)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert site.rate_limited_count == 0

    page = browser_page
    login(page, alice)
    page.goto(job.get_absolute_url())
    rate = page.locator("#job-status dt", has_text="Rate").locator("xpath=..").locator("dd")
    expect(rate).to_contain_text(re.compile(r"\d+ records/s · \d+ requests/min"))
    expect(rate).to_contain_text("paced to the site's limit of 600 requests/min")


def test_an_unpaced_job_shows_its_rate_without_a_limit(browser_page, alice, org_a, settings):
    settings.SYNC_PAGE_SIZE = 5
    site = SimulatedSite(records=80, seed=5, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, name="Open site", site_url=server.url, api_key=KEY, entity_types=["article"]
        )
        job = run_sync(connector)
    assert job.status == SyncJob.Status.COMPLETED, job.error

    page = browser_page
    login(page, alice)
    page.goto(job.get_absolute_url())
    rate = page.locator("#job-status dt", has_text="Rate").locator("xpath=..").locator("dd")
    expect(rate).to_contain_text(re.compile(r"\d+ records/s · \d+ requests/min"))
    expect(rate).not_to_contain_text("paced")
