"""The scheduler's dispatcher tick over 10,000 connectors, 1 % of them due.

Beat calls dispatch_due() every SYNC_DISPATCH_INTERVAL seconds. This seeds BENCH_CONNECTORS
(default 10,000) connectors in the `bench` database, makes BENCH_DUE_PERCENT (default 1 %)
due, and times BENCH_TICKS ticks (each creates the due jobs and enqueues them on the real
Redis broker), plus idle ticks (nothing due, the common case). The baseline, measured in the
same run, is the bare SELECT of due connector ids that any scheduler has to run.

dispatch_due() scans every connector of the database, so this bench has a database of its
own, `bench_scheduler` (created if missing): connectors other benches leave in `bench` would
otherwise be dispatched too (and get jobs those benches do not expect).
"""

import os
import statistics
import time

from bench.status_polling import percentile, setup_django

CONNECTORS = int(os.environ.get("BENCH_CONNECTORS", "10000"))
DUE_PERCENT = float(os.environ.get("BENCH_DUE_PERCENT", "1"))
TICKS = int(os.environ.get("BENCH_TICKS", "10"))


def seed_connectors():
    from accounts.models import Organisation
    from connectors.models import Connector

    org, _ = Organisation.objects.get_or_create(
        slug="bench-scheduler", defaults={"name": "Bench scheduler"}
    )
    have = Connector.objects.filter(organisation=org).count()
    batch = [
        Connector(
            organisation=org,
            name=f"Site {n:05d}",
            site_url=f"https://site{n}.example.org",
            entity_types=["article", "member"],
            frequency=Connector.Frequency.EVERY_15_MINUTES,
        )
        for n in range(have, CONNECTORS)
    ]
    Connector.objects.bulk_create(batch, batch_size=2000)
    return org, list(
        Connector.objects.filter(organisation=org).order_by("pk").values_list("pk", flat=True)
    )


def purge_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("celery")


def reset(org, due_ids, now):
    """Every connector of the bench organisation scheduled in the future except `due_ids`."""
    from datetime import timedelta

    from connectors.models import Connector
    from syncjobs.models import SyncJob

    SyncJob.objects.filter(connector__organisation=org).delete()
    Connector.objects.filter(organisation=org).update(
        next_sync_at=now + timedelta(hours=1), status=Connector.Status.ACTIVE
    )
    Connector.objects.filter(pk__in=due_ids).update(next_sync_at=now - timedelta(seconds=1))
    purge_broker()


def measure(function):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        result = function()
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(ctx.captured_queries), result


def main() -> None:
    setup_django("bench_scheduler")
    import random

    from django.utils import timezone

    from connectors.models import Connector
    from syncjobs.scheduler import SCHEDULED_STATUSES, dispatch_due

    org, ids = seed_connectors()
    due_count = max(1, round(len(ids) * DUE_PERCENT / 100))
    rng = random.Random(3)
    tick_ms, tick_queries, idle_ms, idle_queries, base_ms = [], [], [], [], []
    base_queries = 0
    for _ in range(TICKS):
        due_ids = rng.sample(ids, due_count)
        now = timezone.now()
        reset(org, due_ids, now)

        def baseline():
            return list(
                Connector.objects.filter(
                    status__in=SCHEDULED_STATUSES, next_sync_at__lte=timezone.now()
                ).values_list("pk", flat=True)
            )

        elapsed, queries, found = measure(baseline)
        assert len(found) >= due_count, (len(found), due_count)
        base_ms.append(elapsed)
        base_queries = queries

        elapsed, queries, jobs = measure(dispatch_due)
        assert len(jobs) >= due_count, (len(jobs), due_count)
        tick_ms.append(elapsed)
        tick_queries.append(queries)

        elapsed, queries, jobs = measure(dispatch_due)  # nothing is due any more
        assert not jobs
        idle_ms.append(elapsed)
        idle_queries.append(queries)
    reset(org, [], timezone.now())

    print(
        f"scheduler tick: {len(ids)} connectors, {due_count} due per tick "
        f"({DUE_PERCENT:g} %), {TICKS} ticks, PostgreSQL + Redis broker"
    )
    print(f"{'':<34}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'queries':>9}")
    rows = (
        ("SELECT due ids (baseline)", base_ms, base_queries),
        (f"dispatch tick ({due_count} due)", tick_ms, statistics.median(tick_queries)),
        ("idle tick (nothing due)", idle_ms, statistics.median(idle_queries)),
    )
    for label, values, queries in rows:
        print(
            f"{label:<34}{percentile(values, 0.5):>9.2f}{percentile(values, 0.99):>9.2f}"
            f"{max(values):>9.2f}{queries:>9g}"
        )
    base = percentile(base_ms, 0.5)
    tick, idle = percentile(tick_ms, 0.5), percentile(idle_ms, 0.5)
    print(
        f"ratio to baseline (p50): dispatch tick x{tick / base:.1f} "
        f"({tick / due_count:.2f} ms and "
        f"{statistics.median(tick_queries) / due_count:.1f} queries per dispatched job), "
        f"idle tick x{idle / base:.1f}, p99 idle tick x{percentile(idle_ms, 0.99) / base:.1f}"
    )


if __name__ == "__main__":
    main()
