"""Politeness: at most N concurrent requests per WordPress host, across every worker process,
and a site's Retry-After honoured by all of them (issue 17).

Several connectors often share one site (an association splits its types over connectors),
and a fleet's workers would otherwise hit one small host with as many requests at once as
there are workers. The slots live in Redis, shared by all workers: a sorted set per host whose
members are the requests in flight, each scored with the time it expires. A worker killed in
the middle of a request cannot leak its slot: the slot expires (HOST_SLOT_TTL, longer than
any request may take) and the next acquirer drops it. With Redis down, requests go out
without a slot (fail open): politeness must not stop syncs. Plain Python (redis-py), no Django.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from redis.exceptions import RedisError

from connectors.wordpress.errors import WordPressError

logger = logging.getLogger(__name__)

# Atomically: drop expired slots; take one if fewer than the limit are held and the host did
# not ask everyone to wait (its Retry-After, stored as `{key}:until`). Returns 0 when taken,
# else the seconds to wait before asking again.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local until_ = tonumber(redis.call('GET', KEYS[2]) or '0')
if until_ > now then return tostring(until_ - now) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
  return '0'
end
return '-1'
"""

HOST_SLOT_TTL = 180.0  # seconds: longer than a request with its retries of the body read
POLL = 0.05  # seconds between attempts while every slot is taken


class HostBusy(WordPressError):
    """No slot freed up within the wait: the sync stops with this message."""

    def __init__(self, host: str, waited: float):
        super().__init__(
            f"Other syncs kept every one of this platform's connections to {host} busy for "
            f"{waited:.0f} s (WORDPRESS_HOST_CONCURRENCY). The site may be very slow; the "
            "next sync tries again."
        )


class HostLimiter:
    """Per-host slots in Redis. `slot(host)` is the context manager a request runs in."""

    def __init__(
        self,
        redis_client,
        limit: int,
        *,
        ttl: float = HOST_SLOT_TTL,
        max_wait: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        prefix: str = "wp-host-slots:",
    ) -> None:
        self.redis = redis_client
        self.limit = limit
        self.ttl = ttl
        self.max_wait = max_wait
        self.sleep = sleep
        self.prefix = prefix
        self._acquire = redis_client.register_script(_ACQUIRE)

    def _keys(self, host: str) -> list[str]:
        key = self.prefix + host.lower()
        return [key, key + ":until"]

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        token = secrets.token_hex(8)
        keys = self._keys(host)
        deadline = time.monotonic() + self.max_wait
        while True:
            try:
                answer = float(
                    self._acquire(keys=keys, args=[time.time(), self.limit, self.ttl, token])
                )
            except RedisError:
                # Fail open: politeness must not stop a sync while Redis restarts.
                logger.warning("host slots unavailable (Redis): request sent without a slot")
                yield
                return
            if answer == 0:
                break
            if time.monotonic() >= deadline:
                raise HostBusy(host, self.max_wait)
            self.sleep(POLL if answer < 0 else min(answer, max(0.0, deadline - time.monotonic())))
        try:
            yield
        finally:
            with suppress(RedisError):  # else the slot expires by itself (HOST_SLOT_TTL)
                self.redis.zrem(keys[0], token)

    def back_off(self, host: str, seconds: float) -> None:
        """The host answered Retry-After: no worker sends it anything for that long."""
        if seconds > 0:
            until = time.time() + seconds
            with suppress(RedisError):  # else this worker still waits, the others are not told
                self.redis.set(self._keys(host)[1], repr(until), ex=int(seconds) + 1)
