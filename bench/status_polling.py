"""The job status endpoint under concurrent polling, against a real server on PostgreSQL.

A job page polls its status fragment every 4 s while the job runs. 100 open pages means
~25 requests/s sustained. This runs the app under gunicorn (gthread) on loopback, seeds a
RUNNING job with a large log (the fragment must not cost more as the log grows), replays
100 pollers for BENCH_SECONDS (default 20), and prints p50/p99 latency and queries per
request, next to the same load on /healthz (one SELECT 1) measured in the same run.

Latency on a shared machine is mostly queueing behind other processes, so it also prints
the figure that load does not move much: the CPU the gunicorn workers spent per request
(from /proc), next to the in-process service time. The server's configuration is printed
with the figures; BENCH_WORKERS, BENCH_THREADS, BENCH_WORKER_CLASS and BENCH_CONN_MAX_AGE
(Django's DB_CONN_MAX_AGE, 0 = a new PostgreSQL connection per request, the settings'
default) change it.

Loopback only, bounded in time and count. Uses the `bench` database (created if missing);
BENCH_DATABASE names another one on the same server, BENCH_DATABASE_URL another server.
"""

import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PAGES = int(os.environ.get("BENCH_PAGES", "100"))
INTERVAL = float(os.environ.get("BENCH_POLL_INTERVAL", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
LOG_ROWS = int(os.environ.get("BENCH_LOG_ROWS", "50000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gthread")
CONN_MAX_AGE = os.environ.get("BENCH_CONN_MAX_AGE", os.environ.get("DB_CONN_MAX_AGE", "0"))
DATABASE = os.environ.get("BENCH_DATABASE", "bench")


def bench_database_url(name: str = "bench") -> str:
    """The PostgreSQL of DATABASE_URL (or the local one), database `name`."""
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def ensure_database(url: str) -> None:
    """CREATE DATABASE bench when it does not exist (through the maintenance database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def bench_environment(database: str = "bench") -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
    env["DATABASE_URL"] = bench_database_url(database)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    env["CELERY_BROKER_URL"] = env["REDIS_URL"]
    env.setdefault("LOG_LEVEL", "WARNING")
    env["DB_CONN_MAX_AGE"] = CONN_MAX_AGE
    return env


def setup_django(database: str = "bench") -> dict[str, str]:
    """Point this process at the bench database, migrate it, and return the environment the
    server subprocess must get."""
    env = bench_environment(database)
    ensure_database(env["DATABASE_URL"])
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return env


def wait_for(condition, timeout: float, what: str, interval: float = 0.02):
    """Polls `condition` until it returns something true (returned), or raises after
    `timeout` seconds naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def seed_running_job():
    """An organisation, its admin, a connector and a RUNNING job with LOG_ROWS log rows."""
    from django.utils import timezone

    from accounts.models import Membership, Organisation, User
    from connectors.models import Connector
    from syncjobs.models import SyncJob, SyncLogEntry

    org, _ = Organisation.objects.get_or_create(slug="bench-polling", defaults={"name": "Bench"})
    user, created = User.objects.get_or_create(username="bench-poller")
    if created:
        user.set_password("bench-poller-password")
        user.save()
        Membership.objects.create(user=user, organisation=org)
    connector = Connector.objects.filter(organisation=org, name="Polled site").first()
    if connector is None:
        connector = Connector(
            organisation=org,
            name="Polled site",
            site_url="https://wp.example.org",
            entity_types=["article", "member", "event"],
        )
        connector.api_key = "bench-key-0123456789abcdef0123456789"
        connector.save()
    now = timezone.now()
    job = SyncJob.objects.filter(connector=connector, status=SyncJob.Status.RUNNING).first()
    if job is None:
        SyncJob.objects.filter(connector=connector).delete()
        stats = {
            et: {"total": 5000, "processed": 2500, "created": 2400, "updated": 90, "failed": 10}
            for et in ("article", "member", "event")
        }
        job = SyncJob.objects.create(
            connector=connector,
            kind=SyncJob.Kind.FULL,
            status=SyncJob.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
            stats=stats,
            current_entity_type="member",
        )
    missing = LOG_ROWS - SyncLogEntry.objects.filter(job=job).count()
    batch = []
    for n in range(max(0, missing)):
        batch.append(
            SyncLogEntry(
                job=job,
                connector=connector,
                entity_type=("article", "member", "event")[n % 3],
                external_id=str(n),
                operation=SyncLogEntry.Operation.CREATE,
                status=SyncLogEntry.Status.SUCCESS if n % 50 else SyncLogEntry.Status.FAILED,
                error="" if n % 50 else "Missing title",
            )
        )
        if len(batch) == 5000:
            SyncLogEntry.objects.bulk_create(batch)
            batch = []
    if batch:
        SyncLogEntry.objects.bulk_create(batch)
    # Keep the job "running" however long ago it was seeded.
    SyncJob.objects.filter(pk=job.pk).update(started_at=now, heartbeat_at=now)
    return user, job


def session_cookies(user) -> dict[str, str]:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {settings.SESSION_COOKIE_NAME: session.session_key}


def queries_per_request(path: str, headers: dict, user=None) -> tuple[int, float, float]:
    """Count the SQL of one request, in process, through the same view code, and time 50
    sequential requests (service time without the server or the network): wall and CPU
    milliseconds per request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    if user is not None:
        client.force_login(user)
    client.get(path, headers=headers)  # warm caches (content types, templates)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    # Counted now: captured_queries reads connection.queries, which every later request
    # resets (request_started -> reset_queries), so counting after the loop below gave 0.
    queries = len(ctx.captured_queries)
    assert queries > 0, (path, "no query captured")
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(50):
        client.get(path, headers=headers)
    return (
        queries,
        (time.perf_counter() - started) / 50 * 1000,
        (time.process_time() - cpu) / 50 * 1000,
    )


def status_breakdown(user, job, session_key: str, rounds: int = 200) -> dict[str, float]:
    """Where one status request's time goes, in process: the session and user the auth
    middleware loads (2 of its queries), the user-scoped job lookup (the 3rd), and rendering
    the card. Wall milliseconds per call, median of 5 rounds (the machine is shared)."""
    from django.contrib.auth import get_user
    from django.contrib.sessions.backends.db import SessionStore
    from django.template.loader import get_template
    from django.test import RequestFactory

    from syncjobs import views

    org, connector = job.connector.organisation.slug, job.connector_id
    request = RequestFactory().get("/", headers={"HX-Request": "true"})
    request.user = user
    request.session = SessionStore(session_key)
    template = get_template("syncjobs/_status_card.html")
    loaded = views._load(request, org, connector, job.pk, only=views.STATUS_FIELDS)

    def auth():
        request.session = SessionStore(session_key)
        get_user(request)

    def lookup():
        views._load(request, org, connector, job.pk, only=views.STATUS_FIELDS)

    def render():
        context = {"organisation": loaded[0], "connector": loaded[1]}
        template.render({**context, **views._status_context(loaded[2])}, request)

    figures = {}
    for name, step in (("session+user", auth), ("job lookup", lookup), ("render", render)):
        step()
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds // 5):
                step()
            samples.append((time.perf_counter() - started) / (rounds // 5) * 1000)
        figures[name] = statistics.median(samples)
    return figures


def workers_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of the gunicorn master's children (the workers) so far, from /proc.
    Divided by the requests served in between, it is the server's CPU per request: it counts
    the request's whole path (HTTP parsing, Django, the PostgreSQL client), and unlike the
    latency it hardly moves when other processes load the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for pid in children:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue  # a worker gunicorn restarted; its CPU is lost (rare, bounded)
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--worker-class",
        WORKER_CLASS,
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def poll(url: str, headers: dict, cookies: dict) -> dict:
    """PAGES pollers, each requesting `url` every INTERVAL seconds for SECONDS."""
    latencies: list[float] = []
    errors = retries = 0
    error_kinds: dict[str, int] = {}
    limits = httpx.Limits(max_connections=PAGES, max_keepalive_connections=PAGES)
    async with httpx.AsyncClient(
        cookies=cookies, headers=headers, limits=limits, timeout=30
    ) as client:
        started = time.monotonic()
        stop_at = started + SECONDS

        async def page(offset: float):
            nonlocal errors, retries
            next_at = started + offset
            while next_at < stop_at:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                t0 = time.perf_counter()
                kind = None
                try:
                    try:
                        response = await client.get(url)
                    except (httpx.ReadError, httpx.RemoteProtocolError):
                        # The server closed an idle keep-alive connection as it was reused
                        # (gunicorn keeps them 2 s, a page polls every 4 s): a browser
                        # retries such a GET at once, and so does this poller (counted).
                        retries += 1
                        response = await client.get(url)
                    if response.status_code != 200:
                        kind = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                if kind:
                    errors += 1
                    error_kinds[kind] = error_kinds.get(kind, 0) + 1
                latencies.append((time.perf_counter() - t0) * 1000)
                next_at += INTERVAL

        rng = random.Random(9)
        await asyncio.gather(*(page(rng.uniform(0, INTERVAL)) for _ in range(PAGES)))
        elapsed = time.monotonic() - started
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "errors": errors,
        "error_kinds": error_kinds,
        "retries": retries,
    }


def measured_poll(url: str, headers: dict, cookies: dict, master_pid: int) -> dict:
    """poll(), plus the workers' CPU per request and this client's CPU per request (the
    100 pollers run on the same machine and compete with the server for its cores)."""
    server_cpu, client_cpu = workers_cpu_seconds(master_pid), time.process_time()
    row = asyncio.run(poll(url, headers, cookies))
    requests = max(1, row["requests"])
    row["server_cpu"] = (workers_cpu_seconds(master_pid) - server_cpu) / requests * 1000
    row["client_cpu"] = (time.process_time() - client_cpu) / requests * 1000
    return row


def main() -> None:
    env = setup_django(DATABASE)
    from django.conf import settings

    user, job = seed_running_job()
    org = job.connector.organisation.slug
    status_path = f"/o/{org}/connectors/{job.connector_id}/jobs/{job.pk}/status/"
    htmx = {"HX-Request": "true"}
    status_queries, status_service, status_service_cpu = queries_per_request(
        status_path, htmx, user
    )
    healthz_queries, healthz_service, healthz_service_cpu = queries_per_request("/healthz", {})
    log_rows = job.log_entries.count()
    breakdown = status_breakdown(user, job, session_cookies(user)[settings.SESSION_COOKIE_NAME])

    port = free_port()
    load_before = os.getloadavg()
    server = start_server(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        cookies = session_cookies(user)
        # Warm every worker before measuring.
        asyncio.run(_warm(base + status_path, htmx, cookies))
        baseline = measured_poll(base + "/healthz", {}, {}, server.pid)
        status = measured_poll(base + status_path, htmx, cookies, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()

    print(
        f"status polling: {PAGES} pages every {INTERVAL:g} s for {SECONDS:g} s, "
        f"PostgreSQL database {DATABASE!r}, job log of {log_rows} rows"
    )
    print(
        f"server: gunicorn {WORKERS} workers x {THREADS} threads ({WORKER_CLASS}), "
        f"{env['DJANGO_SETTINGS_MODULE']}, DB_CONN_MAX_AGE={CONN_MAX_AGE} "
        f"({'a new connection per request' if CONN_MAX_AGE == '0' else 'persistent'}); "
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after"
    )
    header = f"{'endpoint':<22}{'requests':>9}{'req/s':>7}{'p50 ms':>9}{'p99 ms':>9}"
    print(
        header + f"{'max ms':>9}{'errors':>7}{'queries':>8}{'service ms':>11}"
        f"{'cpu ms':>8}{'server cpu ms':>14}"
    )
    rows = (
        ("/healthz (baseline)", baseline, healthz_queries, healthz_service, healthz_service_cpu),
        ("job status fragment", status, status_queries, status_service, status_service_cpu),
    )
    for label, row, queries, service, service_cpu in rows:
        print(
            f"{label:<22}{row['requests']:>9}{row['rate']:>7.1f}{row['p50']:>9.1f}"
            f"{row['p99']:>9.1f}{row['max']:>9.1f}{row['errors']:>7}{queries:>8}"
            f"{service:>11.1f}{service_cpu:>8.1f}{row['server_cpu']:>14.1f}"
        )
    print(
        f"ratio status/baseline: p50 x{status['p50'] / baseline['p50']:.2f}, "
        f"p99 x{status['p99'] / baseline['p99']:.2f}, "
        f"queries per request {status_queries} vs {healthz_queries}, "
        f"service time x{status_service / healthz_service:.2f}, "
        f"server CPU x{status['server_cpu'] / max(baseline['server_cpu'], 0.001):.2f}"
    )
    print(
        "(service ms / cpu ms: one request in process, sequential, no server or network, "
        "wall and CPU time; server cpu ms: the gunicorn workers' CPU over the run divided by "
        f"the requests; the pollers themselves used {status['client_cpu']:.1f} ms of CPU per "
        "request on the same machine; req/s below the offered rate means the server could "
        "not keep up)"
    )
    print(
        "status service time by step (in process, ms): "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in breakdown.items())
    )
    for label, row in (("baseline", baseline), ("status", status)):
        if row["errors"]:
            print(f"{label} errors: {row['error_kinds']}")
        if row["retries"]:
            print(
                f"{label}: {row['retries']} GET(s) retried on a keep-alive connection "
                "the server had closed"
            )
    if baseline["errors"] or status["errors"] or not status_queries:
        # Latencies of error pages (a login redirect, a 500) would be figures about nothing.
        raise SystemExit("status polling: requests failed, the figures above are not valid")


async def _warm(url: str, headers: dict, cookies: dict) -> None:
    async with httpx.AsyncClient(cookies=cookies, headers=headers, timeout=30) as client:
        await asyncio.gather(*(client.get(url) for _ in range(WORKERS * THREADS * 2)))


if __name__ == "__main__":
    main()
