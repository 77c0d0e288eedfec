"""A stand-in for a Celery worker process in test_host_limit.py: pings one site several times
through a WordPressClient with the shared per-host limiter. Plain Python (no Django), so a
spawned process imports it quickly."""

import redis

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.hostlimit import HostLimiter


def ping_repeatedly(
    site_url: str, key: str, redis_url: str, limit: int, times: int, prefix: str, start
) -> None:
    limiter = HostLimiter(redis.Redis.from_url(redis_url), limit, prefix=prefix)
    with WordPressClient(site_url, key, allow_private=True, host_limiter=limiter) as client:
        # Both processes start asking together: a spawned process takes a second or more to
        # import, longer than its pings last, so without this they might never overlap.
        start.wait(60)
        for _ in range(times):
            client.ping()
