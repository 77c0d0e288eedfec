"""Politeness: at most WORDPRESS_HOST_CONCURRENCY requests at once per WordPress host across
worker processes, slots of a killed worker expire, and one worker's Retry-After holds back
the others (connectors/wordpress/hostlimit.py). Real Redis, real simulator, real processes."""

import multiprocessing
import os
import time

import pytest
import redis

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.hostlimit import HostBusy, HostLimiter
from connectors.wordpress_client import limiter_redis
from tests.wordpress import host_limit_worker

KEY = "host-limit-test-key-0123456789abcdef0123456789"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# xdist workers share REDIS_URL's database here: each keeps to its own keys, or one's clean-up
# would free another's "crashed" slot early.
PREFIX = f"test-slots-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}:"


@pytest.fixture
def r():
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(PREFIX + "*"):
        client.delete(key)
    yield client
    for key in client.scan_iter(PREFIX + "*"):
        client.delete(key)


@pytest.fixture
def slow_site():
    from wpsim import SimulatedSite, serve

    site = SimulatedSite(records=10, key=KEY)
    site.inject("latency", "ping", seconds=0.2, every=True)
    with serve(site, host="127.0.0.1", port=0) as server:
        yield site, server


def run_two_workers(server, limit):
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    workers = [
        spawn.Process(
            target=host_limit_worker.ping_repeatedly,
            # Their own prefix: another xdist worker's test on 127.0.0.1 must not take a slot.
            args=(server.url, KEY, REDIS_URL, limit, 5, PREFIX, start),
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0


def test_two_worker_processes_share_one_slot_per_host(slow_site, r):
    site, server = slow_site
    run_two_workers(server, limit=1)
    assert site.request_count == 10
    assert site.max_in_flight == 1  # never two requests at once, though two workers asked


def test_without_the_limit_two_workers_do_overlap(slow_site, r):
    """The control: the limit above is what kept them apart."""
    site, server = slow_site
    run_two_workers(server, limit=2)
    assert site.max_in_flight == 2


def test_a_crashed_holders_slot_expires(r):
    limiter = HostLimiter(r, 1, ttl=0.5, prefix=PREFIX)
    crashed = limiter.slot("wp.example.org")
    crashed.__enter__()  # a worker killed mid-request: never released
    started = time.monotonic()
    with limiter.slot("wp.example.org"):
        waited = time.monotonic() - started
    assert 0.3 < waited < 3


def test_no_slot_within_the_wait_fails_with_a_message(r):
    limiter = HostLimiter(r, 1, max_wait=0.3, prefix=PREFIX)
    with (
        limiter.slot("wp.example.org"),
        pytest.raises(HostBusy) as caught,
        limiter.slot("wp.example.org"),
    ):
        pass
    assert "wp.example.org" in str(caught.value) and "WORDPRESS_HOST_CONCURRENCY" in str(
        caught.value
    )


def test_a_retry_after_holds_back_every_worker_of_the_host(r):
    from wpsim import SimulatedSite, serve

    site = SimulatedSite(records=10, key=KEY)
    site.inject("status", "ping", status=429, retry_after=1)
    other = HostLimiter(r, 4, prefix=PREFIX)  # another worker process's limiter
    waits = []

    def sleep(seconds):
        # While this worker waits out the Retry-After, another one asks for the same host.
        started = time.monotonic()
        with other.slot(host):
            waits.append(time.monotonic() - started)

    limiter = HostLimiter(r, 4, prefix=PREFIX)
    with serve(site, host="127.0.0.1", port=0) as server:
        host = server.url.split("//")[1].split(":")[0]
        with WordPressClient(
            server.url, KEY, allow_private=True, host_limiter=limiter, sleep=sleep
        ) as client:
            client.ping()  # 429 with Retry-After: 1, then the retry succeeds
    assert site.request_count == 2
    assert len(waits) == 1 and 0.8 < waits[0] < 2.5


def test_with_redis_down_requests_go_out_without_a_slot():
    """Fail open: a Redis restart must not fail the syncs running meanwhile."""
    from wpsim import SimulatedSite, serve

    # The product's own client (one try): with redis-py's default retries each request waited
    # about 13 s before going out.
    limiter = HostLimiter(limiter_redis("redis://127.0.0.1:1/0"), 1, prefix=PREFIX)
    site = SimulatedSite(records=10, key=KEY)
    site.inject("status", "ping", status=429, retry_after=1)
    with (
        serve(site, host="127.0.0.1", port=0) as server,
        WordPressClient(
            server.url, KEY, allow_private=True, host_limiter=limiter, sleep=lambda s: None
        ) as client,
    ):
        started = time.monotonic()
        assert client.ping()["plugin"] == "association-app"
        assert time.monotonic() - started < 2.0
    assert site.request_count == 2
