"""Sync wall time against a real WordPress as a ratio to a plain fetch of the same pages (issue 17).

Builds a real site with tests/wordpress_real/harness.py (Debian's WordPress, MariaDB, php -S on
loopback, WP_DEBUG off), bulk-loads BENCH_WP_POSTS articles and BENCH_WP_USERS members (the
wordpress_plugin bench's loader), then, BENCH_WP_ROUNDS times in turn:

- the baseline: the client's own list pages of every entity type (per_page 100, keyset), fetched
  and parsed, nothing else: what the site alone costs;
- a cold full sync of the same site (a fresh connector, a worker process of its own), then
  the plain fetch again, then the same sync without the next-page prefetch
  (SYNC_PREFETCH=false), then the plain fetch again.

It prints each sync's wall time and its ratio to the mean of the plain fetches just before and
just after it (the site's speed drifts on a shared machine; target <= 1.1).
Needs `wordpress php-cli php-mysql` and MariaDB on 127.0.0.1:3306 (root, no password); uses the
database `wp_assoc_bench_sync` (dropped afterwards) and the PostgreSQL database BENCH_DATABASE.
"""

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.engine_sync import _check, _child, _fresh_connector, _machine, _setup_django
from bench.wordpress_plugin import BULK_LOAD
from tests.wordpress_real.harness import HarnessError, build_site

POSTS = int(os.environ.get("BENCH_WP_POSTS", "6000"))
USERS = int(os.environ.get("BENCH_WP_USERS", "1000"))
ROUNDS = int(os.environ.get("BENCH_WP_ROUNDS", "3"))
VARIANTS = (("sync", {}), ("sync without prefetch", {"SYNC_PREFETCH": "false"}))


def plain_fetch(connector) -> tuple[float, int, int]:
    """Every list page the sync reads, through the same client: (seconds, records, requests)."""
    from connectors.wordpress import contract
    from connectors.wordpress_client import client_for

    client = client_for(connector)
    started, records = time.perf_counter(), 0
    try:
        for entity_type in contract.ENTITY_TYPES:
            pages = client.iter_pages(
                entity_type, per_page=100, deleted_since=datetime(1970, 1, 1, tzinfo=UTC)
            )
            for page in pages:
                records += len(page.items or [])
        return time.perf_counter() - started, records, client.request_count
    finally:
        client.close()


def main() -> None:
    _setup_django()
    with tempfile.TemporaryDirectory(prefix="bench-wp-sync-") as tmp:
        try:
            site = build_site(Path(tmp), "wp_assoc_bench_sync", seed=False, debug=False)
        except HarnessError as exc:
            print(f"cannot build the real WordPress: {exc}")
            raise SystemExit(1) from exc
        try:
            loaded = site.php(BULK_LOAD % {"posts": POSTS, "users": USERS}, timeout=600)
            site.php("<?php update_option( 'association_app_rate_limit', 0 );")
            print(
                f"wordpress_sync: real WordPress, {loaded['posts']:,} articles + "
                f"{loaded['users']:,} members; machine: {_machine()}",
                flush=True,
            )
            connector = _fresh_connector(site.url, "bench real wp")
            connector.api_key = site.key
            connector.save()
            plain_fetch(connector)  # warm OPcache and MariaDB's buffers
            for round_number in range(1, ROUNDS + 1):
                before = plain_fetch(connector)
                print(
                    f"  round {round_number}: plain fetch (baseline)  {before[0]:6.1f} s  "
                    f"{before[1]:,} records, {before[2]} requests",
                    flush=True,
                )
                for label, env in VARIANTS:
                    connector = _fresh_connector(site.url, "bench real wp")
                    connector.api_key = site.key
                    connector.save()
                    result = _check(_child("--worker", str(connector.pk), "FULL", env=env), label)
                    after = plain_fetch(connector)
                    baseline = (before[0] + after[0]) / 2
                    print(
                        f"  round {round_number}: {label:<24} {result['seconds']:6.1f} s  ratio "
                        f"{result['seconds'] / baseline:.2f} of the plain fetch ({baseline:.1f} s, "
                        f"mean of before/after; target <= 1.10)  [created "
                        f"{result['totals']['created']:,}]",
                        flush=True,
                    )
                    before = after
        finally:
            site.stop()
            site.drop_database()
    print(f"  machine after: {_machine()}")


if __name__ == "__main__":
    main()
