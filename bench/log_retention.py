"""Log retention: pruning BENCH_LOG_ROWS (default 1,000,000) per-record log rows past
retention, and how much a sync running meanwhile is slowed (target: < 20 %).

Seeds the rows with one INSERT … generate_series (jobs of 10,000 rows, finished 200 days ago)
in the `bench_retention` database, imports a simulated site (BENCH_RETENTION_RECORDS, default
20,000 records), then times no-change full syncs of it: BASELINE_SYNCS without pruning (the
baseline, same run), then back to back while `manage.py prune_sync_logs` runs in a process of
its own as beat's worker would. Prints the prune's time and rows/s, and the syncs' mean time
during the prune against the baseline's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.status_polling import setup_django

ROOT = Path(__file__).resolve().parent.parent
LOG_ROWS = int(os.environ.get("BENCH_LOG_ROWS", "1000000"))
RECORDS = int(os.environ.get("BENCH_RETENTION_RECORDS", "20000"))
BASELINE_SYNCS = 3
ROWS_PER_JOB = 10_000
KEY = "bench-retention-key-0123456789abcdef0123456789"


def seed_old_log(connector) -> None:
    from django.db import connection

    from syncjobs.models import SyncJob

    jobs = max(1, LOG_ROWS // ROWS_PER_JOB)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO syncjobs_syncjob (connector_id, kind, trigger, status, created_at, "
            "finished_at, stats, current_entity_type, error, log_kept) "
            "SELECT %s, 'FULL', 'scheduler', 'COMPLETED', now() - interval '200 days', "
            "now() - interval '200 days', '{}', '', '', 'all' FROM generate_series(1, %s)",
            [connector.pk, jobs],
        )
        cursor.execute(
            "INSERT INTO syncjobs_synclogentry (job_id, connector_id, entity_type, external_id, "
            "operation, status, error, processed_at) "
            "SELECT j.id, %s, 'article', g::text, 'SKIP', 'SKIPPED', '', j.finished_at "
            "FROM syncjobs_syncjob j, generate_series(1, %s) g "
            "WHERE j.connector_id = %s AND j.log_kept = 'all' AND j.status = 'COMPLETED' "
            "AND j.finished_at < now() - interval '199 days'",
            [connector.pk, ROWS_PER_JOB, connector.pk],
        )
        cursor.execute("ANALYZE syncjobs_synclogentry")
    assert SyncJob.objects.filter(connector=connector, log_kept="all").count() >= jobs


def timed_sync(connector, kind) -> float:
    from connectors.wordpress_client import client_for
    from syncjobs import services
    from syncjobs.models import SyncJob
    from syncjobs.runner import run_job

    job = services.start_sync(connector, kind)
    started = time.perf_counter()
    with client_for(connector) as client:
        finished = run_job(job.pk, source=client)
    elapsed = time.perf_counter() - started
    assert finished.status == SyncJob.Status.COMPLETED, finished.error
    return elapsed


def main() -> None:
    env = setup_django("bench_retention")
    from accounts.models import Organisation
    from connectors.models import Connector
    from connectors.wordpress import contract
    from records.models import RECORD_MODELS
    from syncjobs.models import SyncJob
    from wpsim import SimulatedSite, serve

    org, _ = Organisation.objects.get_or_create(slug="bench-ret", defaults={"name": "Retention"})
    Connector.objects.filter(organisation=org).delete()  # cascades its jobs and log rows
    for model in RECORD_MODELS.values():
        model.objects.filter(organisation=org).delete()
    site = SimulatedSite(records=RECORDS, seed=13, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as sim:
        connector = Connector(
            organisation=org,
            name="Retention site",
            site_url=sim.url,
            entity_types=list(contract.ENTITY_TYPES),
            frequency=Connector.Frequency.MANUAL,
        )
        connector.api_key = KEY
        connector.save()
        started = time.perf_counter()
        seed_old_log(connector)
        print(f"seeded {LOG_ROWS:,} old log rows in {time.perf_counter() - started:.1f} s")
        timed_sync(connector, SyncJob.Kind.FULL)  # the import (the seeded jobs count as one)
        baseline = [timed_sync(connector, SyncJob.Kind.FULL) for _ in range(BASELINE_SYNCS)]
        prune_env = dict(env, SYNC_LOG_RETENTION_DAYS="90")
        started = time.perf_counter()
        pruner = subprocess.Popen(
            [sys.executable, "manage.py", "prune_sync_logs"], cwd=ROOT, env=prune_env
        )
        during = []
        while pruner.poll() is None:
            during.append(timed_sync(connector, SyncJob.Kind.FULL))
        prune_seconds = time.perf_counter() - started
        assert pruner.returncode == 0
    base, meanwhile = statistics.mean(baseline), statistics.mean(during)
    print(
        f"prune: {LOG_ROWS:,} rows in {prune_seconds:.1f} s = {LOG_ROWS / prune_seconds:,.0f} "
        "rows/s (batches of 5,000, each its own transaction)"
    )
    print(
        f"no-change full sync of {RECORDS:,} records: baseline {base:.2f} s (mean of "
        f"{len(baseline)}), during the prune {meanwhile:.2f} s (mean of {len(during)}) = "
        f"{(meanwhile / base - 1) * 100:+.0f} % (target < +20 %)"
    )


if __name__ == "__main__":
    main()
