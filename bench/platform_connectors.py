"""Platform → Connectors with 10,000 connectors in 1,000 organisations.

Seeds the fleet once (bulk_create; reused on the next run when it is complete): 1,000
organisations x 10 connectors in mixed statuses, 3 jobs per connector (some failed in the
last 24 hours). Then renders the page as a platform admin with Django's test client, in
process, for: page 1, a filtered search, the last page, and the htmx table partial, and
prints the median/p95 time and the queries per request of each.

Baseline, measured in the same run: the bare query a hand-written page would need at the
least, `SELECT ... FROM connector JOIN organisation ORDER BY ... LIMIT 50`, through a raw
cursor. The ratio says what the summary cards, the latest-job subqueries, the count and the
template rendering cost on top of that. The 7-day charts come from a fragment cached for a
minute (syncjobs.charts.PLATFORM_CHARTS_SECONDS), so the page lines are the warm page; the
last line, "charts drawn (cold cache)", is the once-a-minute request that computes them.
Not a timed test: it prints, it never fails on speed.

Database: a dedicated one, BENCH_PLATFORM_DATABASE_URL, else `bench_platform` on
DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432/bench_platform), created if
missing and migrated. Dedicated because the other bench modules seed their own fleets in the
shared `bench` database and the counts here must be exactly this fleet; never DATABASE_URL's
own database, so a developer's data is never touched. `python -m bench` sets Django up once
for all modules, so this one runs in a child interpreter with its own settings.
"""

import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.status_polling import bench_database_url as database_url
from bench.status_polling import ensure_database

ROOT = Path(__file__).resolve().parent.parent
ORGANISATIONS = int(os.environ.get("BENCH_PLATFORM_ORGS", "1000"))
PER_ORGANISATION = int(os.environ.get("BENCH_PLATFORM_CONNECTORS_PER_ORG", "10"))
JOBS_PER_CONNECTOR = 3
REPEAT = int(os.environ.get("BENCH_PLATFORM_REPEAT", "20"))
SLUG_PREFIX = "bench-platform-"


def bench_database_url() -> str:
    return os.environ.get("BENCH_PLATFORM_DATABASE_URL") or database_url("bench_platform")


def setup_django() -> None:
    """Called in the child: its environment already names the dedicated database."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seed() -> None:
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Organisation
    from connectors.models import Connector
    from syncjobs.models import SyncJob

    expected = ORGANISATIONS * PER_ORGANISATION
    mine = Connector.objects.filter(organisation__slug__startswith=SLUG_PREFIX)
    if (
        Organisation.objects.filter(slug__startswith=SLUG_PREFIX).count() == ORGANISATIONS
        and mine.count() == expected
    ):
        print(f"fleet: reusing {expected} connectors in {ORGANISATIONS} organisations")
        return
    started = time.perf_counter()
    with transaction.atomic():
        Organisation.objects.filter(slug__startswith=SLUG_PREFIX).delete()
        organisations = Organisation.objects.bulk_create(
            Organisation(name=f"Bench Association {n:04d}", slug=f"{SLUG_PREFIX}{n:04d}")
            for n in range(ORGANISATIONS)
        )
        now = timezone.now()
        statuses = [Connector.Status.ACTIVE] * 7 + [Connector.Status.ERROR, Connector.Status.PAUSED]
        connectors = Connector.objects.bulk_create(
            Connector(
                organisation=org,
                name=f"Site {i:02d} of {org.name}",
                site_url=f"https://site{i}.{org.slug}.example.org",
                entity_types=["article", "member", "event"],
                status=(status := statuses[(n * PER_ORGANISATION + i) % len(statuses)]),
                next_sync_at=None
                if status == Connector.Status.PAUSED
                else now + timedelta(minutes=(n * 7 + i) % 600),
            )
            for n, org in enumerate(organisations)
            for i in range(PER_ORGANISATION)
        )
        jobs = []
        for n, connector in enumerate(connectors):
            for k in range(JOBS_PER_CONNECTOR):
                at = now - timedelta(hours=6 * (JOBS_PER_CONNECTOR - k) + n % 48)
                failed = (n + k) % 5 == 0
                jobs.append(
                    SyncJob(
                        connector=connector,
                        kind=SyncJob.Kind.INCREMENTAL,
                        trigger=SyncJob.Trigger.SCHEDULER,
                        status=SyncJob.Status.FAILED if failed else SyncJob.Status.COMPLETED,
                        created_at=at,
                        started_at=at,
                        finished_at=at + timedelta(seconds=30),
                        error="WordPress answered 502" if failed else "",
                    )
                )
        SyncJob.objects.bulk_create(jobs, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        # The steady state autovacuum keeps: statistics and a visibility map (index-only scans).
        for model in (Organisation, Connector, SyncJob):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    print(
        f"fleet: created {len(connectors)} connectors in {len(organisations)} organisations,"
        f" {len(jobs)} jobs, in {time.perf_counter() - started:.1f} s"
    )


def measure(action) -> tuple[float, float, float, int]:
    """(median ms, p95 ms, median ms spent in SQL, queries per request) of REPEAT runs after
    two warm-ups. The SQL share tells the database's cost from the template's."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):
        action()
    timings, sql = [], []
    for _ in range(REPEAT):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            action()
            timings.append((time.perf_counter() - started) * 1000)
        sql.append(sum(float(query["time"]) for query in queries.captured_queries) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95, statistics.median(sql), len(queries)


def main() -> None:
    """Run the benchmark in a child interpreter pointed at the dedicated database."""
    url = bench_database_url()
    ensure_database(url)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.test_settings",
        BENCH_PLATFORM_CHILD="1",
    )
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    env.setdefault("LOG_LEVEL", "WARNING")
    print(f"database: {urlsplit(url).path.lstrip('/')} (dedicated)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bench.platform_connectors"], cwd=ROOT, env=env, check=True
    )


def run() -> None:
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Organisation, User
    from connectors.models import Connector
    from platform_admin.views import PAGE_SIZE

    seed()
    root, created = User.objects.get_or_create(
        username="bench-platform-root", defaults={"is_superuser": True, "is_staff": True}
    )
    if created:
        root.set_unusable_password()
        root.save()
    client = Client()
    client.force_login(root)
    url = reverse("platform_admin:connectors")
    total = Connector.objects.count()
    last_page = max(1, -(-total // PAGE_SIZE))

    def get(path, **headers):
        def action():
            response = client.get(path, **headers)
            assert response.status_code == 200, (path, response.status_code)

        return action

    connector_table = Connector._meta.db_table
    organisation_table = Organisation._meta.db_table
    baseline_sql = (
        f"SELECT c.id, c.name, c.kind, c.status, c.next_sync_at, o.name, o.slug"  # noqa: S608
        f" FROM {connector_table} c JOIN {organisation_table} o ON o.id = c.organisation_id"
        f" ORDER BY o.name, c.name, c.id LIMIT {PAGE_SIZE}"
    )

    def baseline():
        with connection.cursor() as cursor:
            cursor.execute(baseline_sql)
            cursor.fetchall()

    def report(label, median, p95, sql, queries):
        ratio = median / base_ms
        print(f"{label:<34} {median:>10.2f} {p95:>8.2f} {sql:>8.2f} {queries:>8} {ratio:>10.1f}x")

    cases = [
        ("page 1", url),
        ("search + filter + sort", url + "?q=association+07&status=ERROR&sort=-last_sync"),
        (f"last page ({last_page})", f"{url}?page={last_page}"),
        ("sort by last sync, page 100", f"{url}?sort=last_sync&page=100"),
    ]
    base_ms, base_p95, base_sql, _ = measure(baseline)
    organisations = Organisation.objects.filter(connectors__isnull=False).distinct().count()
    print(
        f"{total} connectors in {organisations} organisations;"
        f" {REPEAT} requests each, as a platform admin (Django test client)"
    )
    header = ("request", "median ms", "p95 ms", "sql ms", "queries", "x baseline")
    print("{:<34} {:>10} {:>8} {:>8} {:>8} {:>11}".format(*header))
    label = "baseline: raw SELECT ... LIMIT 50"
    print(f"{label:<34} {base_ms:>10.2f} {base_p95:>8.2f} {base_sql:>8.2f} {1:>8} {1:>10.1f}x")
    for label, path in cases:
        report(label, *measure(get(path)))
    label = "htmx table partial (page 1)"
    report(label, *measure(get(url, HTTP_HX_REQUEST="true")))

    # The 7-day charts are a cached fragment (syncjobs.charts.PLATFORM_CHARTS_SECONDS): the
    # figures above are the warm page; this is the once-a-minute request that draws them.
    from django.core.cache import cache

    page_one = get(url)

    def cold():
        cache.clear()
        page_one()

    report("page 1, charts drawn (cold cache)", *measure(cold))
    print(
        "queries per request include the session and user lookups; they are the same at"
        " 10 or 10,000 connectors (tests/platform_admin: test_query_count_is_constant)."
    )


if __name__ == "__main__":
    run() if os.environ.get("BENCH_PLATFORM_CHILD") == "1" else main()
