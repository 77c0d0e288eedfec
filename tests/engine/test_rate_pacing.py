"""A sync against a site that announces its rate limit paces itself to it (issue 17): no 429,
and the job keeps the rate it achieved for its page."""

import threading
import time

import pytest
from django.db import connections

from syncjobs.models import SyncJob


def test_a_sync_paced_to_the_announced_limit_never_gets_a_429(
    site, server, connector, sync, settings
):
    # 20 requests per 2 s (600 per minute): the ~50 requests of this sync span several windows.
    settings.SYNC_PAGE_SIZE = 5
    site.rate_limit, site.rate_window = 20, 2
    job = sync(connector, SyncJob.Kind.FULL, sleep=time.sleep)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert site.rate_limited_count == 0
    assert sync.client.request_count > 2 * site.rate_limit

    job.refresh_from_db()
    assert job.rate["limit_per_minute"] == 600
    # Every request of the run (a first push subscription, if any, comes before it).
    assert sync.client.request_count - 1 <= job.rate["requests"] <= sync.client.request_count
    assert job.rate["records"] == sum(c["processed"] for c in job.stats.values())
    achieved = job.effective_rate()
    assert achieved["paced_to"] == 600
    assert achieved["requests_per_minute"] <= 600
    assert achieved["records_per_second"] > 0


def test_a_sync_against_a_site_without_a_limit_is_not_paced(site, server, connector, sync):
    job = sync(connector, SyncJob.Kind.FULL, sleep=time.sleep)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    job.refresh_from_db()
    assert job.rate["limit_per_minute"] is None
    assert job.rate["paced_seconds"] == 0
    assert job.effective_rate()["paced_to"] is None


@pytest.mark.django_db(transaction=True)
def test_a_running_job_shows_the_rate_achieved_so_far(site, server, connector, sync, settings):
    """Each heartbeat stores the rate so far: the job page's Rate says requests/min while the
    job runs, not only once it has ended."""
    settings.SYNC_STALE_AFTER_SECONDS = 6  # a beat a second
    settings.SYNC_PAGE_SIZE = 5
    site.rate_limit, site.rate_window = 20, 2  # ~50 requests: the run lasts a few seconds
    seen, done = [], threading.Event()

    def watch():
        try:
            while not done.is_set():
                seen.extend(
                    SyncJob.objects.filter(status=SyncJob.Status.RUNNING).values_list(
                        "rate", flat=True
                    )
                )
                done.wait(0.1)
        finally:
            connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        job = sync(connector, SyncJob.Kind.FULL, sleep=time.sleep)
    finally:
        done.set()
        watcher.join()
    assert job.status == SyncJob.Status.COMPLETED, job.error
    while_running = [rate for rate in seen if rate.get("requests")]
    assert while_running, "no rate stored while the job ran"
    assert while_running[0]["requests"] < job.rate["requests"]
    assert while_running[0]["limit_per_minute"] == 600
