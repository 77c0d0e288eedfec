"""Log retention: pruning BENCH_LOG_ROWS (default 10,000,000) per-record log rows past
retention, and how much a sync running meanwhile is slowed (target: < 20 %); then the same
rows in a table partitioned by month (a scratch table), removed by dropping partitions, to
decide by measurement between the two designs (docs/log-retention.md).

Seeds the rows with one INSERT … generate_series (jobs of 10,000 rows, finished 200 days ago)
in the `bench_retention` database, imports a simulated site (BENCH_RETENTION_RECORDS, default
20,000 records), then times no-change full syncs of it: BASELINE_SYNCS without pruning
before the prune and as many after it (the baseline, same run), and back to back while
`manage.py prune_sync_logs` runs in a process of its own as beat's worker would (paced by
BENCH_PRUNE_YIELD_RATIO, default 1.0 as the hourly task). Prints the prune's time and rows/s,
and the syncs' mean time during the prune against the baseline's.

The comparison: before the prune, the seeded rows are copied into `bench_log_by_month`
(PARTITION BY RANGE (processed_at), one partition a month, the log's six indexes), and one
sync's worth of log rows (BENCH_RETENTION_RECORDS) is inserted into each table: what every
sync would pay for partitioning. After the prune, the old partitions are detached and
dropped, timed. The scratch table is dropped at the end. A 10 M-row run needs about 8 GB
free (checked first) and took 25 minutes on the busy shared machine.
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
LOG_ROWS = int(os.environ.get("BENCH_LOG_ROWS", "10000000"))
RECORDS = int(os.environ.get("BENCH_RETENTION_RECORDS", "20000"))
BASELINE_SYNCS = 3
# The prune's pacing (prune_sync_logs --yield-ratio; the hourly task's is 1.0, 0 is flat out).
YIELD_RATIO = float(os.environ.get("BENCH_PRUNE_YIELD_RATIO", "1.0"))
ROWS_PER_JOB = 10_000
KEY = "bench-retention-key-0123456789abcdef0123456789"


def seed_old_log(connector) -> None:
    from django.db import connection

    from syncjobs.models import SyncJob

    jobs = max(1, LOG_ROWS // ROWS_PER_JOB)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO syncjobs_syncjob (connector_id, kind, trigger, status, created_at, "
            "finished_at, stats, current_entity_type, error, log_kept, dry_run, "
            "preview_failures, scope, expected_sizes, rate) "
            "SELECT %s, 'FULL', 'scheduler', 'COMPLETED', now() - interval '200 days', "
            "now() - interval '200 days', '{}', '', '', 'all', false, '{}', '{}', '{}', '{}' "
            "FROM generate_series(1, %s)",
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


SCRATCH = "bench_log_by_month"
LOG_INDEXES = (  # SyncLogEntry.Meta.indexes, column for column
    "(job_id, id DESC)",
    "(job_id, entity_type, id DESC)",
    "(job_id, status, id DESC)",
    "(job_id, operation, id DESC)",
    "(job_id, external_id)",
    "(connector_id, id DESC)",
)
BYTES_PER_ROW = 800  # the log with its indexes, twice (the scratch copy), with margin


def check_disk() -> None:
    import shutil

    free = shutil.disk_usage("/").free  # PostgreSQL's data directory is on this machine
    needed = LOG_ROWS * BYTES_PER_ROW
    if free < needed:
        raise SystemExit(
            f"{LOG_ROWS:,} log rows need about {needed / 1e9:.1f} GB free, {free / 1e9:.1f} GB "
            "are: set BENCH_LOG_ROWS lower"
        )


def create_partitioned_copy() -> float:
    """The seeded log copied into a table partitioned by month; returns seconds."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cursor.execute(
            f"CREATE TABLE {SCRATCH} (LIKE syncjobs_synclogentry INCLUDING DEFAULTS) "
            "PARTITION BY RANGE (processed_at)"
        )
        cursor.execute(
            "SELECT date_trunc('month', min(processed_at)), date_trunc('month', now()) "
            "+ interval '1 month' FROM syncjobs_synclogentry"
        )
        month, end = cursor.fetchone()
        n = 0
        while month < end:
            cursor.execute(
                f"CREATE TABLE {SCRATCH}_{n} PARTITION OF {SCRATCH} FOR VALUES FROM (%s) TO "
                "(%s::timestamptz + interval '1 month')",
                [month, month],
            )
            cursor.execute("SELECT %s::timestamptz + interval '1 month'", [month])
            month, n = cursor.fetchone()[0], n + 1
        cursor.execute(f"ALTER TABLE {SCRATCH} ADD PRIMARY KEY (id, processed_at)")
        for number, columns in enumerate(LOG_INDEXES):
            cursor.execute(f"CREATE INDEX {SCRATCH}_ix{number} ON {SCRATCH} {columns}")
        cursor.execute(f"INSERT INTO {SCRATCH} SELECT * FROM syncjobs_synclogentry")  # noqa: S608
        cursor.execute(f"ANALYZE {SCRATCH}")
    return time.perf_counter() - started


def insert_one_sync(table: str, connector_id: int, job_id: int) -> float:
    """A sync's log (RECORDS rows, pages of 100 in one statement each) into `table`."""
    from django.db import connection, transaction

    started = time.perf_counter()
    for first in range(0, RECORDS, 100):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (id, job_id, connector_id, entity_type, external_id, "  # noqa: S608
                "operation, status, error, processed_at) "
                "SELECT nextval('syncjobs_synclogentry_id_seq'), %s, %s, 'article', g::text, "
                "'SKIP', 'SKIPPED', '', now() FROM generate_series(%s, %s) g",
                [job_id, connector_id, first, first + 99],
            )
    return time.perf_counter() - started


def drop_old_partitions(days: int) -> tuple[float, int]:
    """Detach and drop every partition wholly older than `days`; returns (seconds, rows).
    The rows are counted first, outside the timing: the drop itself never reads them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [SCRATCH],
        )
        partitions = [name for (name,) in cursor.fetchall()]
        cursor.execute("SELECT now() - make_interval(days => %s)", [days])
        cutoff = cursor.fetchone()[0]
        old = []
        for name in partitions:
            cursor.execute(f"SELECT max(processed_at), count(*) FROM {name}")  # noqa: S608
            newest, count = cursor.fetchone()
            if newest is not None and newest < cutoff:
                old.append((name, count))
        started = time.perf_counter()
        for name, _ in old:
            cursor.execute(f"ALTER TABLE {SCRATCH} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
    return time.perf_counter() - started, sum(count for _, count in old)


def drop_scratch() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")


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
    check_disk()
    env = setup_django("bench_retention")
    from django.db import connection

    from accounts.models import Organisation
    from connectors.models import Connector
    from connectors.wordpress import contract
    from records.models import RECORD_MODELS
    from syncjobs.models import SyncJob
    from wpsim import SimulatedSite, serve

    drop_scratch()  # an interrupted run's
    org, _ = Organisation.objects.get_or_create(slug="bench-ret", defaults={"name": "Retention"})
    Connector.objects.filter(organisation=org).delete()  # cascades its jobs and log rows
    for model in RECORD_MODELS.values():
        model.objects.filter(organisation=org).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE syncjobs_synclogentry")  # the space a last run left
    site = SimulatedSite(records=RECORDS, seed=13, key=KEY)
    try:
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
            copy_seconds = create_partitioned_copy()
            print(f"copied them into {SCRATCH} (monthly partitions) in {copy_seconds:.1f} s")
            timed_sync(connector, SyncJob.Kind.FULL)  # the import (the seeded jobs count as one)
            job = SyncJob.objects.filter(connector=connector).order_by("-pk").first()
            inserts = {
                table: [insert_one_sync(table, connector.pk, job.pk) for _ in range(3)]
                for table in ("syncjobs_synclogentry", SCRATCH)
            }
            baseline = [timed_sync(connector, SyncJob.Kind.FULL) for _ in range(BASELINE_SYNCS)]
            prune_env = dict(env, SYNC_LOG_RETENTION_DAYS="90")
            started = time.perf_counter()
            pruner = subprocess.Popen(
                [sys.executable, "manage.py", "prune_sync_logs", f"--yield-ratio={YIELD_RATIO}"],
                cwd=ROOT,
                env=prune_env,
            )
            during = []
            while pruner.poll() is None:
                during.append(timed_sync(connector, SyncJob.Kind.FULL))
            prune_seconds = time.perf_counter() - started
            assert pruner.returncode == 0
            # The baseline brackets the prune: on a shared machine others' load comes and goes
            # within minutes, and syncs before it alone once made the prune look 2x worse.
            after = [timed_sync(connector, SyncJob.Kind.FULL) for _ in range(BASELINE_SYNCS)]
            drop_seconds, dropped = drop_old_partitions(90)
    finally:
        drop_scratch()
    base, meanwhile = statistics.mean(baseline + after), statistics.mean(during)
    print(
        f"prune by DELETE: {LOG_ROWS:,} rows in {prune_seconds:.1f} s = "
        f"{LOG_ROWS / prune_seconds:,.0f} rows/s (batches of 5,000, each its own transaction, "
        f"--yield-ratio {YIELD_RATIO:g})"
    )
    print(
        f"no-change full sync of {RECORDS:,} records: baseline {base:.2f} s (mean of "
        f"{len(baseline)} before the prune, {statistics.mean(baseline):.2f} s, and "
        f"{len(after)} after, {statistics.mean(after):.2f} s), during the prune "
        f"{meanwhile:.2f} s (mean of {len(during)}) = {(meanwhile / base - 1) * 100:+.0f} % "
        "(target < +20 %)"
    )
    print(
        f"prune by DROP PARTITION: {dropped:,} rows in {drop_seconds * 1000:.0f} ms "
        f"(x{prune_seconds / max(drop_seconds, 1e-6):,.0f} faster)"
    )
    plain, parted = (
        statistics.median(inserts["syncjobs_synclogentry"]),
        statistics.median(inserts[SCRATCH]),
    )
    print(
        f"one sync's log ({RECORDS:,} rows, pages of 100) inserted: plain table "
        f"{plain * 1000:.0f} ms, partitioned {parted * 1000:.0f} ms "
        f"({(parted / plain - 1) * 100:+.0f} %), median of 3 each"
    )


if __name__ == "__main__":
    main()
