"""The client paces itself to the rate limit a site announces (issue 17), with httpx faked by
respx as a site with the plugin's rolling-window limit, on a fake clock."""

import httpx
import pytest
import respx

from connectors.wordpress import contract
from connectors.wordpress.pacing import Limit, Pacer, announced_limit

from .conftest import SITE

API = f"{SITE}/api/v1/sync/"
PING = {
    "plugin": "association-app",
    "contract_version": 1,
    "site_name": "Example",
    "entity_types": list(contract.ENTITY_TYPES),
}


class FakeTime:
    """A clock that moves only when the client sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class LimitedSite:
    """The plugin's limit (class-aa-settings.php): at most `limit` requests per rolling
    `window` seconds, else 429 with Retry-After; `announce` says it on every answer."""

    def __init__(self, time, limit, window=60, *, announce=True):
        self.time, self.limit, self.window, self.announce = time, limit, window, announce
        self.log = []
        self.answers = []

    def __call__(self, request):
        now = self.time.now
        self.log = [t for t in self.log if t > now - self.window]
        if len(self.log) >= self.limit:
            wait = max(1, int(self.log[0] + self.window - now + 0.999))
            self.answers.append(429)
            return httpx.Response(429, headers={"Retry-After": str(wait), **self.headers(0, wait)})
        self.log.append(now)
        self.answers.append(200)
        reset = int(self.log[0] + self.window - now + 0.999)
        return httpx.Response(
            200, json=PING, headers=self.headers(self.limit - len(self.log), reset)
        )

    def headers(self, remaining, reset):
        if not self.announce:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{self.limit};w={self.window}",
        }


@pytest.fixture
def time():
    return FakeTime()


@pytest.fixture
def paced(make_client, time):
    def make(**kwargs):
        return make_client(
            sleep=time.sleep, pacer=Pacer(clock=time.clock, sleep=time.sleep), **kwargs
        )

    return make


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_a_paced_client_never_meets_the_limit_and_uses_it_over_several_windows(mock, paced, time):
    site = LimitedSite(time, limit=30)
    mock.get(API + "ping").mock(side_effect=site)
    client = paced()
    started = time.now
    for _ in range(200):
        client.ping()
    assert site.answers == [200] * 200
    assert client.request_count == 200
    per_minute = 200 * 60 / (time.now - started)
    # Within the limit, and close to it: 1/20 of it is kept as the burst allowance.
    assert 0.9 * 30 <= per_minute <= 30
    assert client.pacer.limit == Limit(30, 60.0)
    assert client.pacer.waited == pytest.approx(time.now - started)


def test_without_an_announced_limit_the_same_site_answers_429_and_retry_after_is_honoured(
    mock, paced, time
):
    site = LimitedSite(time, limit=30, announce=False)
    mock.get(API + "ping").mock(side_effect=site)
    client = paced()
    for _ in range(40):
        client.ping()
    assert site.answers.count(429) == 1  # the 31st request, then a wait of Retry-After
    assert time.sleeps == [60.0]
    assert client.pacer.waited == 0


def test_nothing_remaining_waits_for_the_reset_instead_of_a_429(mock, paced, time):
    # Another connector of the same site spent the window: the site says so.
    mock.get(API + "ping").mock(
        side_effect=[
            httpx.Response(
                200,
                json=PING,
                headers={
                    "X-RateLimit-Limit": "120",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": "7",
                },
            ),
            httpx.Response(200, json=PING, headers={"X-RateLimit-Limit": "120"}),
        ]
    )
    client = paced()
    client.ping()
    client.ping()
    assert time.sleeps == [7.0]
    assert client.pacer.held_requests == 1


def test_a_site_that_announces_nothing_is_not_paced(mock, paced, time):
    mock.get(API + "ping").respond(200, json=PING)
    client = paced()
    for _ in range(50):
        client.ping()
    assert time.sleeps == []
    assert client.pacer.limit is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Limit": "600"}, (Limit(600, 60.0), None, 0.0)),
        (
            {"X-RateLimit-Limit": "10", "RateLimit-Policy": "10;w=2", "X-RateLimit-Remaining": "4"},
            (Limit(10, 2.0), 4, 0.0),
        ),
        ({"X-RateLimit-Limit": "60", "X-RateLimit-Reset": "9999"}, (Limit(60, 60.0), None, 60.0)),
        ({"X-RateLimit-Limit": "many"}, (None, None, 0.0)),
        ({"X-RateLimit-Limit": "0"}, (None, None, 0.0)),
        ({"X-RateLimit-Limit": "2.5"}, (None, None, 0.0)),
        ({}, (None, None, 0.0)),
    ],
)
def test_announced_limit_reads_the_headers_and_ignores_nonsense(headers, expected):
    assert announced_limit(httpx.Headers(headers)) == expected


def test_the_limit_per_minute_is_what_the_job_page_shows():
    assert Limit(10, 2.0).per_minute == 300
    assert Limit(600, 60).per_minute == 600
