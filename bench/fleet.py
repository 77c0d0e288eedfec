"""A fleet: N connectors on 2 Celery worker processes, what each no-change job costs, and
how late the schedule runs (issue 17).

Runs the product's own processes on loopback: Celery beat (the scheduler's tick every
SYNC_DISPATCH_INTERVAL seconds), one worker of the default queue with 2 prefork processes
(`celery -A bench._fleet_worker`: the project's app plus statement counters) and a few
simulated sites (`manage.py wpsim`, BENCH_FLEET_SITES processes, default 2) that the N
connectors share, as an association's connectors often share one site. The connectors
are already imported (their change cursors are the site's, taken from one real import per
site), so every job is a no-change incremental sync. Their due times are spread evenly
over a window of W seconds: 2,000 connectors every 15 minutes is 2.2 jobs/s; by default they
are due at 3 jobs/s (1.35x compressed: what the shared 2-core machine could take), N=200 in
67 s and N=2,000 in 667 s.

Prints per N: jobs per second, worker CPU and database statements per job (the sync task;
the scheduler's dispatch task apart), schedule lag (the connector's due time -> the job's
start) p50/p99 against the target (one scheduler tick plus the job's own duration), and
the PostgreSQL connections open (and active) at peak; and where a job's wall time in the
worker goes: its CPU, its wait for a CPU (the run queue: a loaded machine), and the rest
(waiting on the site, PostgreSQL, Redis), with how busy the 2 processes were over the run
and the machine's load average. Baseline, same run and same worker: a Celery no-op task
(its round trip rate and CPU per task).

`python -m bench.fleet` (or `make bench BENCH_ARGS=fleet`): N=200 and N=2,000, about 15
minutes. `--quick`: N=200 only, about 2.5 minutes. `--sizes=500,1000 --rate=10`: other fleet
sizes and jobs per second. Database `bench_fleet` (created if missing; BENCH_FLEET_DATABASE
names another, for two runs side by side).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from bench.status_polling import free_port, percentile, setup_django, wait_for

ROOT = Path(__file__).resolve().parent.parent
SITES = int(os.environ.get("BENCH_FLEET_SITES", "2"))
SITE_RECORDS = int(os.environ.get("BENCH_FLEET_SITE_RECORDS", "200"))
NOOPS = 300
KEY = "bench-fleet-key-0123456789abcdef0123456789abcd"
PREFIX = f"bench-fleet-{os.getpid()}"
QUEUE = "celery"
TICK = float(os.environ.get("SYNC_DISPATCH_INTERVAL", "5"))


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its children (the prefork pool), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = int(fields[11]) + int(fields[12])
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(pid, 0) for pid in tree) / ticks


class ConnectionSampler(threading.Thread):
    """Peak PostgreSQL connections to the bench database (open, and running a statement),
    sampled every 0.1 s; this sampler's own connection is not counted."""

    def __init__(self, url: str, database: str):
        super().__init__(daemon=True)
        self.url, self.database = url, database
        self.peak_open = self.peak_active = 0
        self._stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stopping.wait(0.1):
                opened, active = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state = 'active') "
                    "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.database],
                ).fetchone()
                self.peak_open = max(self.peak_open, opened)
                self.peak_active = max(self.peak_active, active)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)


def start_sites(env) -> tuple[list[subprocess.Popen], list[str]]:
    import httpx

    processes, urls = [], []
    for n in range(SITES):
        port = free_port()
        command = [sys.executable, "manage.py", "wpsim", "--port", str(port)]
        command += ["--records", str(SITE_RECORDS), "--seed", str(40 + n), "--key", KEY]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env))
        urls.append(f"http://127.0.0.1:{port}")

    def up():
        try:
            return all(httpx.get(url + "/wp-json/", timeout=1).status_code for url in urls)
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "the simulated sites", interval=0.1)
    return processes, urls


def stop(processes) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def imported_state(org, urls) -> list[dict]:
    """One real initial import per site: the cursors a connector of that site has after it."""
    from connectors.models import Connector
    from connectors.wordpress import contract
    from syncjobs import services
    from syncjobs.models import SyncJob
    from syncjobs.runner import run_job

    states = []
    for n, url in enumerate(urls):
        connector = Connector(
            organisation=org,
            name=f"Import {n}",
            site_url=url,
            entity_types=list(contract.ENTITY_TYPES),
            frequency=Connector.Frequency.MANUAL,
        )
        connector.api_key = KEY
        connector.save()
        job = services.start_sync(connector, SyncJob.Kind.INITIAL)
        job = run_job(job.pk)
        assert job.status == SyncJob.Status.COMPLETED, job.error
        connector.refresh_from_db()
        states.append(
            {
                "cursors": connector.cursors,
                "entity_types": connector.entity_types,
                "initial_import_done_at": connector.initial_import_done_at,
                "mapping_revision": connector.mapping_revision,
                "api_key_encrypted": connector.api_key_encrypted,
            }
        )
    return states


def seed_fleet(org, urls, states, size: int, start, window: float) -> dict[int, object]:
    """`size` imported connectors, due evenly over `window` seconds from `start`; returns
    {connector id: due time}."""
    from connectors.models import Connector

    fleet = []
    for n in range(size):
        state = states[n % len(urls)]
        fleet.append(
            Connector(
                organisation=org,
                name=f"Fleet {size} {n:05d}",
                site_url=urls[n % len(urls)],
                frequency=Connector.Frequency.EVERY_15_MINUTES,
                reconcile_frequency=Connector.Reconciliation.OFF,
                next_sync_at=start + timedelta(seconds=window * n / size),
                **state,
            )
        )
    created = Connector.objects.bulk_create(fleet, batch_size=1000)
    return {connector.pk: connector.next_sync_at for connector in created}


def start_worker(env, directory: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "bench._fleet_worker", "--quiet", "worker"]
    command += ["--queues", QUEUE, "--concurrency", "2", "--loglevel", "WARNING"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    command += ["--hostname", f"fleet-{os.getpid()}@%h"]
    return subprocess.Popen(command, cwd=directory, env=env)


def start_beat(env, directory: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "config", "--quiet", "beat"]
    command += ["--loglevel", "WARNING"]
    command += ["--schedule", str(Path(directory) / "beat-schedule")]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def counted(client, task: str) -> tuple[int, int]:
    """(tasks run, statements they ran) of one task name, as the worker counted them."""
    tasks = int(client.hget(f"{PREFIX}:tasks", task) or 0)
    return tasks, int(client.hget(f"{PREFIX}:statements", task) or 0)


def timed(client, task: str) -> tuple[float, float, float]:
    """(wall, CPU, run-queue wait) seconds the worker's processes spent in one task name."""
    return tuple(
        int(client.hget(f"{PREFIX}:{name}_us", task) or 0) / 1e6
        for name in ("wall", "cpu", "runqueue")
    )


def noop_baseline(app, client, worker) -> tuple[float, float]:
    """NOOPS no-op tasks through the broker and the worker: (tasks/s, worker CPU ms each)."""
    before, _ = counted(client, "bench.fleet.noop")
    cpu = cpu_seconds(worker.pid)
    started = time.perf_counter()
    for _ in range(NOOPS):
        app.send_task("bench.fleet.noop", queue=QUEUE)
    wait_for(lambda: counted(client, "bench.fleet.noop")[0] >= before + NOOPS, 120, "no-ops", 0.1)
    elapsed = time.perf_counter() - started
    return NOOPS / elapsed, (cpu_seconds(worker.pid) - cpu) * 1000 / NOOPS


def run_fleet(env, app, client, org, urls, states, size: int, rate: float) -> dict:
    from django.utils import timezone

    from syncjobs.models import SyncJob

    window = size / rate
    directory = tempfile.mkdtemp(prefix="bench-fleet-")
    worker = beat = None
    sampler = ConnectionSampler(env["DATABASE_URL"], env["DATABASE_URL"].rsplit("/", 1)[1])
    try:
        worker = start_worker(env, str(ROOT))
        app.send_task("bench.fleet.noop", queue=QUEUE)
        wait_for(lambda: counted(client, "bench.fleet.noop")[0] >= 1, 120, "the worker", 0.1)
        noop_rate, noop_cpu = noop_baseline(app, client, worker)
        start = timezone.now() + timedelta(seconds=8)  # beat's start-up
        due = seed_fleet(org, urls, states, size, start, window)
        sampler.start()
        sync_before = counted(client, "syncjobs.tasks.run_sync_job")
        dispatch_before = counted(client, "syncjobs.tasks.dispatch_due_syncs")
        cpu_before = cpu_seconds(worker.pid)
        timed_before = timed(client, "syncjobs.tasks.run_sync_job")
        beat = start_beat(env, directory)
        jobs = SyncJob.objects.filter(connector_id__in=list(due))
        terminal = jobs.filter(status__in=SyncJob.TERMINAL_STATUSES)
        # A worker that cannot keep up is a result, not a failure: measured after a grace of
        # a window more (at least 2 minutes), the jobs still waiting are reported and dropped.
        deadline = time.monotonic() + window + max(120.0, window) + 8
        while terminal.count() < size and time.monotonic() < deadline:
            time.sleep(1)
        cpu = cpu_seconds(worker.pid) - cpu_before
        sampler.stop()
        sync_after = counted(client, "syncjobs.tasks.run_sync_job")
        dispatch_after = counted(client, "syncjobs.tasks.dispatch_due_syncs")
        timed_after = timed(client, "syncjobs.tasks.run_sync_job")
        load = os.getloadavg()[0]
    finally:
        if sampler.is_alive():
            sampler.stop()
        stop([beat, worker])
    rows = list(
        jobs.filter(status__in=SyncJob.TERMINAL_STATUSES).values_list(
            "connector_id", "status", "started_at", "finished_at"
        )
    )
    unfinished = size - len(rows)
    jobs.exclude(status__in=SyncJob.TERMINAL_STATUSES).update(status=SyncJob.Status.CANCELLED)
    client.delete(QUEUE)
    completed = [r for r in rows if r[1] == SyncJob.Status.COMPLETED]
    lags = [(started - due[connector]).total_seconds() for connector, _, started, _ in rows]
    durations = [(finished - started).total_seconds() for _, _, started, finished in completed]
    span = (max(r[3] for r in rows) - min(r[2] for r in rows)).total_seconds()
    sync_tasks = sync_after[0] - sync_before[0]
    dispatches = dispatch_after[0] - dispatch_before[0]
    wall, task_cpu, runqueue = (a - b for a, b in zip(timed_after, timed_before, strict=True))
    return {
        "size": size,
        "window": window,
        "completed": len(completed),
        "jobs": len(rows),
        "unfinished": unfinished,
        "jobs_per_second": len(rows) / span,
        "cpu_ms": cpu * 1000 / len(rows),
        "statements": (sync_after[1] - sync_before[1]) / max(1, sync_tasks),
        "dispatch_statements": (dispatch_after[1] - dispatch_before[1]) / len(rows),
        "dispatches": dispatches,
        "lag_p50": percentile(lags, 0.5),
        "lag_p99": percentile(lags, 0.99),
        "duration_p50": percentile(durations, 0.5),
        "duration_p99": percentile(durations, 0.99),
        "peak_open": sampler.peak_open,
        "peak_active": sampler.peak_active,
        "noop_rate": noop_rate,
        "noop_cpu_ms": noop_cpu,
        # Per sync task, as the worker's processes timed it (see bench/_fleet_worker.py).
        "task_wall_ms": wall * 1000 / max(1, sync_tasks),
        "task_cpu_ms": task_cpu * 1000 / max(1, sync_tasks),
        "task_runqueue_ms": runqueue * 1000 / max(1, sync_tasks),
        # Share of the 2 processes' time over the run spent inside sync tasks.
        "busy": wall / (2 * span),
        "load": load,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.fleet")
    parser.add_argument("--quick", action="store_true", help="N=200 only")
    parser.add_argument("--sizes", default="200,2000", help="fleet sizes, comma-separated")
    parser.add_argument("--rate", type=float, default=3.0, help="jobs due per second")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    sizes = [200] if args.quick else [int(n) for n in args.sizes.split(",")]

    os.environ.pop("PLATFORM_URL", None)  # no push subscription: the schedule alone
    env = setup_django(os.environ.get("BENCH_FLEET_DATABASE", "bench_fleet"))
    # The worker keeps its connection as docker-compose.yml's does (BENCH_CONN_MAX_AGE=0: a
    # new one per job, the settings' default).
    conn_max_age = os.environ.get("BENCH_CONN_MAX_AGE", "60")
    env = dict(env, BENCH_FLEET_KEY=PREFIX, SYNC_DISPATCH_INTERVAL=str(TICK))
    env["DB_CONN_MAX_AGE"] = conn_max_age
    env.pop("PLATFORM_URL", None)
    import redis

    from accounts.models import Organisation
    from config.celery import app
    from connectors.models import Connector
    from records.models import RECORD_MODELS

    client = redis.Redis.from_url(env["REDIS_URL"])
    client.delete(QUEUE, "bulk")  # messages an interrupted run left
    org, _ = Organisation.objects.get_or_create(slug="bench-fleet", defaults={"name": "Fleet"})
    Connector.objects.filter(organisation=org).delete()
    for model in RECORD_MODELS.values():
        model.objects.filter(organisation=org).delete()
    started = time.perf_counter()
    sites, urls = start_sites(env)
    results = []
    try:
        states = imported_state(org, urls)
        for size in sizes:
            results.append(run_fleet(env, app, client, org, urls, states, size, args.rate))
            Connector.objects.filter(organisation=org, name__startswith="Fleet ").delete()
            print(f"N={size}: {results[-1]}", flush=True)  # in case a later size fails
    finally:
        stop(sites)
        client.delete(
            *(f"{PREFIX}:{name}" for name in ("tasks", "statements", "wall_us", "cpu_us")),
            f"{PREFIX}:runqueue_us",
            QUEUE,
        )
    print(
        f"fleet: {len(urls)} simulated sites ({SITE_RECORDS} records each) shared by the "
        f"connectors; 1 worker (-Q {QUEUE}, prefork, 2 processes, DB_CONN_MAX_AGE "
        f"{conn_max_age}) + beat (tick {TICK:g} s); "
        f"no-change incremental jobs due at {args.rate:.1f}/s (2,000 every 15 min = 2.2/s)"
    )
    header = (
        f"{'N':>6}{'jobs/s':>8}{'CPU ms/job':>11}{'stmts/job':>10}{'sched/job':>10}"
        f"{'lag p50':>9}{'lag p99':>9}{'target':>8}{'job p50':>9}{'PG conns':>10}"
    )
    print(header)
    for r in results:
        target = TICK + r["duration_p99"]
        print(
            f"{r['size']:>6}{r['jobs_per_second']:>8.1f}{r['cpu_ms']:>11.1f}"
            f"{r['statements']:>10.1f}{r['dispatch_statements']:>10.2f}"
            f"{r['lag_p50']:>8.2f}s{r['lag_p99']:>8.2f}s{target:>7.1f}s{r['duration_p50']:>8.3f}s"
            f"{r['peak_open']:>6} ({r['peak_active']})"
        )
        if r["completed"] != r["jobs"] or r["unfinished"]:
            print(
                f"  !! {r['jobs'] - r['completed']} jobs failed, {r['unfinished']} never ran "
                f"within the window plus its grace (the worker fell behind)"
            )
    for r in results:
        other = r["task_wall_ms"] - r["task_cpu_ms"] - r["task_runqueue_ms"]
        print(
            f"where a job's wall time goes, N={r['size']}: {r['task_wall_ms']:.0f} ms in the "
            f"task = {r['task_cpu_ms']:.0f} ms CPU + at least {r['task_runqueue_ms']:.0f} ms "
            f"waiting for a CPU + {other:.0f} ms waiting on the site, PostgreSQL and Redis "
            f"(their helper threads' waits for a CPU included); the 2 processes were in a "
            f"sync task {r['busy']:.0%} of the run; load average {r['load']:.1f} on "
            f"{os.cpu_count()} CPUs"
        )
    for r in results:
        print(
            f"baseline N={r['size']}: Celery no-op round trip {r['noop_rate']:.0f} tasks/s, "
            f"{r['noop_cpu_ms']:.1f} ms worker CPU each: a no-change job costs "
            f"x{r['cpu_ms'] / max(r['noop_cpu_ms'], 0.01):.1f} the no-op's CPU"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(
            f"N={last['size']} against N={first['size']}: statements per job "
            f"x{last['statements'] / first['statements']:.2f}, CPU per job "
            f"x{last['cpu_ms'] / first['cpu_ms']:.2f}, lag p99 "
            f"x{last['lag_p99'] / max(first['lag_p99'], 0.001):.2f}"
        )
    print(
        "target: lag p99 < one tick + the job's own duration (p99); statements per job "
        f"constant in N. Took {time.perf_counter() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
