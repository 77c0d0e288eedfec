"""Pacing of one client's requests to the rate limit its site announces (contract §12).

The plugin limits a site to N requests per rolling window of W seconds and says so on every
answer (``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` in seconds,
``RateLimit-Policy: N;w=W``). Running into the limit costs a 429 and a wait of up to a whole
window; pacing spends the same budget evenly and never meets the 429.

A token bucket: ``burst`` tokens at most, refilled at ``(N - burst) / (W + 1 s)`` per second,
so in any window of W seconds this client sends at most ``burst + (N - burst) = N`` requests,
with a second to spare for the site's uneven time stamps. The site's own count rules over
ours: when it says nothing remains (other connectors of the same site spent it), the next
request waits for its ``Reset``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"
RESET_HEADER = "X-RateLimit-Reset"
POLICY_HEADER = "RateLimit-Policy"
#: The plugin's window when an answer does not say (§12).
DEFAULT_WINDOW = 60.0
#: Spread over a window this much longer: the site stamps a request when PHP gets to it,
#: after a bootstrap whose time varies, so two requests sent 1/rate apart can be counted
#: closer together (and its Reset is in whole seconds).
JITTER = 1.0


def _number(value: str | None) -> float | None:
    try:
        number = float((value or "").strip())
    except ValueError:
        return None
    return number if number >= 0 and number == number and number != float("inf") else None


@dataclass(frozen=True)
class Limit:
    """An announced limit: ``requests`` per ``window`` seconds."""

    requests: int
    window: float

    @property
    def per_minute(self) -> float:
        return self.requests * 60.0 / self.window


def announced_limit(headers: Mapping[str, str]) -> tuple[Limit | None, int | None, float]:
    """(limit, remaining, reset seconds) from an answer's headers; (None, None, 0) without."""
    requests = _number(headers.get(LIMIT_HEADER))
    if not requests or requests != int(requests):
        return None, None, 0.0
    window = DEFAULT_WINDOW
    for part in (headers.get(POLICY_HEADER) or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        seconds = _number(value)
        if name == "w" and seconds:
            window = seconds
    remaining = _number(headers.get(REMAINING_HEADER))
    reset = _number(headers.get(RESET_HEADER)) or 0.0
    return (
        Limit(int(requests), window),
        int(remaining) if remaining is not None else None,
        min(reset, window),
    )


class Pacer:
    """Token bucket of one client, learnt from the answers (no limit known: no waiting)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.limit: Limit | None = None
        self.tokens = 0.0
        self.updated = 0.0
        #: Monotonic time before which nothing is sent (the site said nothing remains).
        self.hold_until = 0.0
        #: Seconds spent waiting for the limit, and how many requests waited.
        self.waited = 0.0
        self.held_requests = 0
        # The engine reads the next page in a prefetch thread: one bucket, taken in turn.
        self._lock = threading.Lock()

    @property
    def burst(self) -> int:
        """Tokens the bucket holds: a few requests back to back, 1/20 of the limit."""
        return max(1, self.limit.requests // 20) if self.limit else 0

    @property
    def rate(self) -> float:
        """Tokens per second, so that burst + rate * window stays within the limit."""
        if self.limit is None:
            return 0.0
        return max(1, self.limit.requests - self.burst) / (self.limit.window + JITTER)

    def _refill(self, now: float) -> None:
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self) -> float:
        """Block until the next request may go; returns the seconds waited."""
        with self._lock:
            return self._wait()

    def _wait(self) -> float:
        if self.limit is None:
            return 0.0
        now = self.clock()
        self._refill(now)
        delay = max(self.hold_until - now, (1.0 - self.tokens) / self.rate, 0.0)
        if delay > 0:
            self.sleep(delay)
            now = self.clock()
            self._refill(now)
            self.waited += delay
            self.held_requests += 1
        self.tokens = max(0.0, self.tokens - 1.0)
        return delay

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from an answer: the limit (it may change), and whether anything remains."""
        with self._lock:
            self._observe(*announced_limit(headers))

    def _observe(self, limit: Limit | None, remaining: int | None, reset: float) -> None:
        if limit is None:
            self.limit = None
            return
        now = self.clock()
        if limit != self.limit:
            self.limit = limit
            self.updated = now
            self.tokens = float(self.burst) if remaining is None else min(self.burst, remaining)
        else:
            self._refill(now)
        if remaining is not None:
            self.tokens = min(self.tokens, float(remaining))
            if remaining == 0:
                self.hold_until = max(self.hold_until, now + reset)
