"""Simulator throughput: is wpsim ever the bottleneck of a sync benchmark?

Prints, in one run:

- baseline: a bare ``http.server`` (ThreadingHTTPServer, keep-alive) answering one static body
  the size of a 100-record page — the floor of Python HTTP serving on this machine;
- wpsim: the same number of keyset-paged 100-record list requests (auth, parameter
  validation, bisect, cached record JSON) and its ratio to the baseline (target >= 0.5);
- wpsim's in-process cost of building one page (no HTTP), in milliseconds (target: a few ms);
- the WordPressClient against wpsim (adds the client's checks and JSON parsing).

Quick run: ``python -m bench wpsim_throughput`` (BENCH_WPSIM_RECORDS, default 20,000).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-wpsim-key-0123456789abcdef0123456789"


def _static_server(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Static(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Same socket option as wpsim: without it Nagle + delayed ACK stall each answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            self.wfile.write(head + body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Static)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _time_pages(http, url_for, pages: int) -> float:
    started = time.perf_counter()
    for number in range(pages):
        response = http.get(url_for(number))
        response.raise_for_status()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    import httpx

    from connectors.wordpress.client import WordPressClient
    from wpsim import SimulatedSite, api, serve

    parser = argparse.ArgumentParser(prog="bench.wpsim_throughput")
    default = int(os.environ.get("BENCH_WPSIM_RECORDS", "20000"))
    parser.add_argument("--records", type=int, default=default)
    args = parser.parse_args(argv if argv is not None else [])

    started = time.perf_counter()
    site = SimulatedSite(records=args.records, seed=1, key=KEY)
    generated = time.perf_counter() - started
    entity_type, endpoint = "member", "members"
    order = site.ids(entity_type)
    pages = max(1, len(order) // 100)
    # Keyset cursors of every page, computed up front so both runs do the same requests.
    cursors = []
    for number in range(pages):
        if number == 0:
            cursors.append("")
            continue
        last = site.record(entity_type, order[number * 100 - 1])
        cursors.append(f"&modified_after={last['modified_gmt']}&after_id={last['id']}")

    request = api.Request("GET", f"/api/v1/sync/{endpoint}", {"per_page": ["100"]}, {})
    request.headers["x-association-sync-key"] = KEY
    sample = api.handle(site, request).body
    repeats = 300
    t0 = time.perf_counter()
    for _ in range(repeats):
        api.handle(site, request)
    build_ms = (time.perf_counter() - t0) / repeats * 1000

    static, static_url = _static_server(sample)
    headers = {"X-Association-Sync-Key": KEY}
    with serve(site) as server, httpx.Client(headers=headers, trust_env=False) as http:
        base = f"{server.url}/api/v1/sync/{endpoint}?per_page=100"
        _time_pages(http, lambda n: static_url + "/", 5)  # warm-up
        _time_pages(http, lambda n: base + cursors[n], 5)
        # Enough requests to be stable, alternating runs, best of three each.
        requests = max(300, pages)
        baseline_s = wpsim_s = float("inf")
        for _ in range(3):
            baseline_s = min(baseline_s, _time_pages(http, lambda n: static_url + "/", requests))
            wpsim_s = min(wpsim_s, _time_pages(http, lambda n: base + cursors[n % pages], requests))
        with WordPressClient(server.url, KEY, allow_private=True) as client:
            t0 = time.perf_counter()
            fetched = sum(len(p.items) for p in client.iter_pages(entity_type))
            client_s = time.perf_counter() - t0
    static.shutdown()
    static.server_close()

    baseline_rate = requests / baseline_s
    wpsim_rate = requests / wpsim_s
    print(f"site: {args.records:,} records generated in {generated:.1f} s")
    print(f"requests: {requests} per run (cycling {pages} keyset pages of 100 {endpoint})")
    print(f"page body: {len(sample):,} bytes; built in-process in {build_ms:.2f} ms")
    print(f"baseline  bare http.server, static body : {baseline_rate:8.0f} pages/s")
    print(f"wpsim     keyset list pages             : {wpsim_rate:8.0f} pages/s")
    ratio = wpsim_rate / baseline_rate
    print(f"ratio     wpsim / baseline              : {ratio:8.2f}  (target >= 0.5)")
    print(
        f"client    WordPressClient.iter_pages     : {fetched / client_s:8.0f} records/s "
        f"({fetched:,} records, {client_s:.2f} s)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
