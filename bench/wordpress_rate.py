"""What a modest host serves a sync, and what its visitors feel meanwhile (issue 17): the
measurement behind the plugin's default rate limit.

Builds Debian's real WordPress with tests/wordpress_real/harness.py on 2 PHP workers (a modest
shared host), bulk-loads BENCH_WP_POSTS articles (default 5,000) and has a visitor read article
pages (one every BENCH_VISITOR_PAUSE seconds, default 0.25) throughout. Baseline, same run: the
visitor's page time with no sync running (measured before each round). Then the platform's
WordPressClient walks the articles at 100 per page, one or two connectors of the site at once,
with the plugin's limit off (what the site serves at most) and with each limit in
BENCH_RATE_LIMITS (requests per 60 s, default 60,120,300,600), the client pacing itself to the
limit the plugin announces. Printed per row (median of BENCH_RATE_ROUNDS interleaved rounds):
records/s, requests/min, 429 answers met, seconds paced, and the visitor's page time p50/p95
as a ratio of the baseline.

Needs what bench.wordpress_plugin needs; uses the database `wp_assoc_rate_bench` (dropped).
"""

import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.wordpress_plugin import BULK_LOAD
from connectors.wordpress.client import WordPressClient
from tests.wordpress_real.harness import HarnessError, build_site

POSTS = int(os.environ.get("BENCH_WP_POSTS", "5000"))
LIMITS = [int(n) for n in os.environ.get("BENCH_RATE_LIMITS", "60,120,300,600").split(",") if n]
PAUSE = float(os.environ.get("BENCH_VISITOR_PAUSE", "0.25"))
#: Longest a paced run lasts: enough windows' worth to see the pace, not the whole site.
RUN_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", "20"))
ROUNDS = int(os.environ.get("BENCH_RATE_ROUNDS", "2"))
BASELINE_SECONDS = 10.0


class Visitor(threading.Thread):
    """Reads random article pages until stopped; keeps each page's time."""

    def __init__(self, pages: list[str]) -> None:
        super().__init__(daemon=True)
        self.pages = pages
        self.times: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60) as http:
            while not self.stop.is_set():
                started = time.perf_counter()
                http.get(random.choice(self.pages)).raise_for_status()
                self.times.append(time.perf_counter() - started)
                self.stop.wait(PAUSE)

    def take(self) -> list[float]:
        times, self.times = self.times, []
        return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def sync(site, seconds: float) -> dict:
    """Walk the articles as the sync engine does (one request at a time), again from the
    start when done, for `seconds`; returns what it achieved."""
    with WordPressClient(site.url, site.key, allow_private=True, timeout=60) as client:
        client.ping()  # the engine's first request: the client learns the announced limit
        started = time.perf_counter()
        records = pages = 0
        while time.perf_counter() - started < seconds:
            for page in client.iter_pages("article", per_page=100):
                records += len(page.items)
                pages += 1
                if time.perf_counter() - started > seconds:
                    break
        return {
            "records": records,
            "pages": pages,
            "limited": client.request_count - 1 - pages,  # requests beyond one per page: 429s
            "paced": client.pacer.waited,
            "seconds": time.perf_counter() - started,
        }


def run(site, limit: int, syncs: int) -> dict:
    """`syncs` connectors of the same site syncing at once under the plugin's `limit`."""
    site.php(
        f"<?php update_option( 'association_app_rate_limit', {limit} );"
        " update_option( 'association_app_rate_log', array(), false );"
    )
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda: results.append(sync(site, RUN_SECONDS)))
        for _ in range(syncs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = max(r["seconds"] for r in results)
    return {
        "records_per_s": sum(r["records"] for r in results) / seconds,
        "requests_per_min": sum(r["pages"] for r in results) * 60 / seconds,
        "limited": sum(r["limited"] for r in results),
        "paced_s": sum(r["paced"] for r in results),
    }


def main() -> None:
    configs = [(0, 1), (0, 2), (60, 1), (120, 1), (300, 1), (300, 2), (600, 1)]
    configs = [(limit, n) for limit, n in configs if limit == 0 or limit in LIMITS]
    measured: dict[tuple[int, int], list[tuple[dict, list[float]]]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp:
        try:
            site = build_site(Path(tmp), "wp_assoc_rate_bench", seed=False, debug=False, workers=2)
        except HarnessError as exc:
            print(f"cannot build the real WordPress: {exc}")
            raise SystemExit(1) from exc
        try:
            site.php(BULK_LOAD % {"posts": POSTS, "users": 10}, timeout=600)
            # Their permalinks: a visitor asking ?p=ID is redirected there first.
            pages = site.php(
                "<?php global $wpdb; echo wp_json_encode( array_map( 'get_permalink',"
                ' $wpdb->get_col( "SELECT ID FROM {$wpdb->posts}'
                " WHERE post_type = 'post' LIMIT 2000\" ) ) );"
            )
            visitor = Visitor(pages)
            visitor.start()
            baseline: list[float] = []
            # Interleaved rounds, each with its own baseline window: the machine's load drifts.
            for _ in range(ROUNDS):
                visitor.take()
                time.sleep(BASELINE_SECONDS)  # a measuring window, not synchronisation
                baseline += visitor.take()
                for config in configs:
                    result = run(site, *config)
                    measured[config].append((result, visitor.take()))
            visitor.stop.set()
            visitor.join()
        finally:
            site.stop()
            site.drop_database()
    p50, p95 = statistics.median(baseline), percentile(baseline, 0.95)
    print(
        f"{POSTS} articles, 100 per page, php -S with 2 workers; a visitor every {PAUSE:g} s; "
        f"{ROUNDS} interleaved rounds of {RUN_SECONDS:g} s per row"
    )
    print(
        f"  visitor alone (baseline): page p50 {p50 * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms "
        f"({len(baseline)} pages)"
    )
    print("  limit/60s syncs  records/s  requests/min  429s  paced s  visitor p50      visitor p95")
    for (limit, syncs), runs in measured.items():
        results = [result for result, _ in runs]
        times = [t for _, page_times in runs for t in page_times]
        v50, v95 = statistics.median(times), percentile(times, 0.95)
        records = statistics.median(r["records_per_s"] for r in results)
        requests = statistics.median(r["requests_per_min"] for r in results)
        limited = sum(r["limited"] for r in results)
        paced = sum(r["paced_s"] for r in results)
        print(
            f"  {limit or 'off':>9} {syncs:5d}  {records:9.0f}  {requests:12.0f}  {limited:4d}  "
            f"{paced:7.1f}  {v50 * 1000:6.1f} ms ({v50 / p50:3.1f}x)"
            f"  {v95 * 1000:6.1f} ms ({v95 / p95:3.1f}x)"
        )


if __name__ == "__main__":
    main()
