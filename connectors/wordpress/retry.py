"""When and how long to wait before sending again (contract §12): the pacing to the site's
announced rate limit before each request, and the retries with exponential backoff + jitter,
honouring Retry-After, after a transient failure.

Kept by hand rather than on tenacity or stamina: the loop is short, and its decisions (a PUT
is retried only when the site asks for it with Retry-After; a timeout is remembered for the
§7.3 conflict check; a Retry-After is shared with every worker through the host limiter) would
become callbacks reading a retry state object, which says the same less plainly.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from . import contract
from .errors import RequestTimedOut, SiteUnreachable
from .pacing import Pacer
from .transport import Transport

logger = logging.getLogger("connectors.wordpress")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Retry-After values above this are capped (§12).
RETRY_AFTER_MAX = 300.0


@dataclass
class RetryPolicy:
    """How often and how long: at most ``max_retries`` retries, backoff doubling from
    ``backoff_base`` up to ``backoff_max`` with ±20 % jitter, Retry-After capped."""

    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = RETRY_AFTER_MAX

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay * random.uniform(0.8, 1.2)

    def retry_after(self, response: httpx.Response) -> float | None:
        """The answer's Retry-After in seconds (integer or HTTP date), capped; None without."""
        value = response.headers.get(contract.RETRY_AFTER_HEADER)
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            seconds = float(value)
        else:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return max(0.0, min(self.retry_after_max, seconds))

    def status_delay(self, method: str, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying an answer with this status; None: do not retry."""
        if response.status_code not in RETRYABLE_STATUSES or attempt >= self.max_retries:
            return None
        retry_after = self.retry_after(response)
        # PUT is retried only when the site asks for it (§12).
        asked = response.status_code in (429, 503) and retry_after is not None
        if method == "PUT" and not asked:
            return None
        return retry_after if retry_after is not None else self.backoff(attempt)


@dataclass
class Sent:
    """The final answer of a request and what it took to get it."""

    response: httpx.Response
    body: bytes
    url: str
    attempt: int
    requests: int
    timed_out_before: bool


class Requester:
    """Sends a request through the transport, paced and retried (one site, one at a time)."""

    def __init__(
        self,
        transport: Transport,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None],
        host_limiter=None,
        pacer: Pacer | None = None,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.sleep = sleep
        #: hostlimit.HostLimiter shared by every worker (None: no per-host limit).
        self.host_limiter = host_limiter
        self.pacer = pacer or Pacer(sleep=sleep)

    def host_slot(self):
        if self.host_limiter is None:
            return contextlib.nullcontext()
        return self.host_limiter.slot(self.transport.site_host)

    def send(self, method: str, url: str, **kwargs) -> Sent:
        """The answer to ``method url`` after pacing and retries (§12); the last retryable
        failure is raised, or its answer returned for the caller to interpret."""
        attempt = requests = 0
        timed_out_before = False
        while True:
            before = self.transport.request_count
            try:
                self.pacer.wait()
                with self.host_slot():
                    response, body, final_url = self.transport.send(method, url, **kwargs)
            except (RequestTimedOut, SiteUnreachable) as exc:
                requests += self.transport.request_count - before
                if not exc.retryable or attempt >= self.policy.max_retries:
                    if attempt:
                        exc.message = f"{exc.message} (after {attempt + 1} attempts)"
                        exc.args = (exc.message,)
                    raise
                timed_out_before = timed_out_before or isinstance(exc, RequestTimedOut)
                delay = self.policy.backoff(attempt)
                logger.info("%s %s failed (%s); retry in %.1fs", method, url, exc, delay)
            else:
                requests += self.transport.request_count - before
                self.pacer.observe(response.headers)
                delay = self.policy.status_delay(method, response, attempt)
                if delay is None:
                    return Sent(response, body, final_url, attempt, requests, timed_out_before)
                retry_after = self.policy.retry_after(response)
                if retry_after is not None and self.host_limiter is not None:
                    # Every worker waits, not only this one (several connectors, one host).
                    self.host_limiter.back_off(self.transport.site_host, retry_after)
                logger.info(
                    "%s %s answered %s; retry in %.1fs", method, url, response.status_code, delay
                )
            self.sleep(delay)
            attempt += 1
