"""Freshness: how long an edit in WordPress takes to reach the platform's record, with push.

Runs the product as deployed, on loopback: gunicorn (the push endpoint), one Celery worker
(solo pool, both queues) and a simulated site (wpsim, which sends the plugin's signed push on
every change). After the initial import (which subscribes the site), it edits one article
at a time (BENCH_FRESHNESS_EDITS, default 100) and times edit → the platform's record shows
the new title, polling the database every 20 ms. Prints p50/p95/max.

Target: p50 < 5 s, p95 < 15 s. Baseline, without push: an edit waits for the next scheduled
incremental sync, uniformly 0-15 min at the best frequency (p50 7.5 min, p95 14.25 min).
Most of the figure is the debounce (PUSH_DEBOUNCE_SECONDS, default 2 s), which turns a burst
of saves into one sync.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.status_polling import free_port, percentile, setup_django, start_server, wait_for

ROOT = Path(__file__).resolve().parent.parent
EDITS = int(os.environ.get("BENCH_FRESHNESS_EDITS", "100"))
RECORDS = int(os.environ.get("BENCH_FRESHNESS_RECORDS", "2000"))
KEY = "bench-freshness-key-0123456789abcdef0123456789"


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"]
    command += ["--queues", "celery,bulk", "--loglevel", "WARNING", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def main() -> None:
    port = free_port()
    os.environ["PLATFORM_URL"] = f"http://127.0.0.1:{port}"
    env = setup_django("bench_freshness")
    from accounts.models import Organisation
    from config.celery import app
    from connectors.models import Connector
    from connectors.wordpress import contract
    from records.models import RECORD_MODELS, Article
    from syncjobs import services
    from syncjobs.models import SyncJob
    from wpsim import SimulatedSite, serve

    with app.connection_for_write() as conn:  # messages an interrupted run left
        conn.default_channel.client.delete("celery", "bulk")
    org, _ = Organisation.objects.get_or_create(slug="bench-fresh", defaults={"name": "Fresh"})
    # A previous run's connector and records (a deleted connector keeps its records).
    Connector.objects.filter(organisation=org).delete()
    for model in RECORD_MODELS.values():
        model.objects.filter(organisation=org).delete()
    site = SimulatedSite(records=RECORDS, seed=11, key=KEY)
    server = worker = None
    with serve(site, host="127.0.0.1", port=0) as sim:
        try:
            server = start_server(env, port)
            worker = start_worker(env)
            connector = Connector(
                organisation=org,
                name="Fresh site",
                site_url=sim.url,
                entity_types=list(contract.ENTITY_TYPES),
                frequency=Connector.Frequency.MANUAL,  # only pushes start syncs here
            )
            connector.api_key = KEY
            connector.save()
            job = services.start_sync(connector, SyncJob.Kind.INITIAL)
            wait_for(lambda: SyncJob.objects.get(pk=job.pk).is_terminal, 300, "the initial import")
            assert site.pusher.subscriptions, "the initial import did not subscribe the site"
            # Deliberately broken records never arrive (FAILED rows): edit the good ones.
            broken = site.bad_ids("article") | site.duplicate_slug_ids()
            ids = [rid for rid in site.ids("article") if rid not in broken]
            latencies = []
            for n in range(EDITS):
                rid = ids[n % len(ids)]
                started = time.monotonic()
                site.edit("article", ids=[rid])
                # The platform stores the title decoded (&amp; -> &): compare the edit's mark.
                mark = " (edited " + site.record("article", rid)["title"].split(" (edited ")[1]
                wait_for(
                    lambda rid=rid, mark=mark: Article.objects.filter(
                        connector=connector, external_id=str(rid), title__endswith=mark
                    ).exists(),
                    120,
                    f"edit {n} to arrive",
                )
                latencies.append(time.monotonic() - started)
            jobs = SyncJob.objects.filter(connector=connector, trigger=SyncJob.Trigger.PUSH)
            print(
                f"edits: {EDITS} on a {RECORDS}-record site, one at a time; pushed jobs: "
                f"{jobs.count()}"
            )
            print(
                f"edit -> platform record: p50 {percentile(latencies, 0.5):.2f} s, "
                f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s "
                "(target p50 < 5 s, p95 < 15 s)"
            )
            print("baseline (schedule only, every 15 min): p50 450 s, p95 855 s")
        finally:
            for process in (worker, server):
                if process is not None:
                    process.terminate()
                    try:
                        process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        process.kill()


if __name__ == "__main__":
    main()
