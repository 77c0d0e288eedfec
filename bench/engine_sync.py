"""Sync engine throughput, request economy and memory, against the simulator on loopback.

For BENCH_RECORDS records (default 100,000) spread over the seven entity types, on PostgreSQL
(the `bench` database, created if missing; BENCH_DATABASE names another one on the same server,
BENCH_DATABASE_URL another server), this prints:

- the machine (cores, load average) before and after: the figures are only comparable
  with the load they were taken under;
- a baseline measured in the same run, before and again after the cold sync: the same pages
  fetched with plain httpx (keyset paging, one request per 100 records) and written with
  PostgreSQL COPY into one table, no mapping, no checks — the cost of moving the bytes;
- cold full sync records/s (the engine: mapping, sanitising, hashing, slug checks, bulk
  upserts, one log row per record) and its ratio to the mean of the two baselines (target
  ≥ 0.45, issue 20);
- no-change full re-sync records/s (every record hashed and skipped);
- no-change preview (a dry run of a full sync: the same walk, nothing written) records/s
  (target: at least the re-sync's);
- no-change incremental: requests made (target: one per enabled entity type — 7 for 7 types;
  each type's deletions come with its first list page, contract 1.1);
- incremental with 1 % of every type changed: requests and seconds;
- the worker's peak memory (VmHWM of the worker process) for a cold full sync of 10,000
  and of all records (target: within 20 % of each other: memory does not grow with records);
- CPU per record: the worker's and the simulator's; PostgreSQL's is the rest of the machine's.

`--variants` measures the engine with and without its next-page prefetch, and with and without
its page writer thread, in one run (cold full sync ratio and CPU per record, the no-change full
re-sync's seconds and CPU per record, the no-change incremental's requests, queries and CPU).

BENCH_PROFILE=<path>: each worker also writes the cProfile of its main thread's CPU to
`<path>.<kind>.prof` (read it with `python -m pstats`).

The simulator runs in this process (threaded HTTP server); each sync runs in a separate worker
process, so its memory and CPU are its own. Quick run: `python -m bench.engine_sync --records
5000` (or BENCH_RECORDS=5000 make bench).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-engine-sync-key-0123456789abcdef0123456789"
ORG_SLUG = "bench-engine"
MEMORY_SMALL = 10_000
DATABASE = os.environ.get("BENCH_DATABASE", "bench")


def _env() -> dict[str, str]:
    from bench.status_polling import bench_environment

    return bench_environment(DATABASE)


def _setup_django() -> None:
    from bench.status_polling import setup_django

    setup_django(DATABASE)


def peak_rss_kb() -> int:
    """Peak resident memory of this process image (VmHWM). Not ru_maxrss: Linux carries a
    forking parent's peak into the child's ru_maxrss, which would count the simulator."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- Worker process: one sync, measured ----------------------------------------------------


def worker(connector_id: int, kind: str) -> None:
    os.environ.update(_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from connectors.models import Connector
    from connectors.wordpress_client import client_for
    from syncjobs.models import SyncJob
    from syncjobs.runner import run_job

    connector = Connector.objects.get(pk=connector_id)
    # Created directly (not through services.start_sync) so no Celery message is sent.
    # "PREVIEW": a dry run of a full sync (SyncJob.dry_run).
    preview = kind == "PREVIEW"
    job = SyncJob.objects.create(
        connector=connector, kind=SyncJob.Kind.FULL if preview else kind, dry_run=preview
    )
    client = client_for(connector)
    queries = _count_queries()
    profile_path = os.environ.get("BENCH_PROFILE")
    profiler = None
    if profile_path:
        import cProfile

        # The main thread's CPU, not the wall clock: a wait for PostgreSQL or for the
        # machine's other processes is not where the worker's CPU goes.
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    job = run_job(job.pk, source=client)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{profile_path}.{kind.lower()}.prof")
    client.close()
    print(
        json.dumps(
            {
                "status": job.status,
                "error": job.error,
                "seconds": seconds,
                "cpu": cpu,
                "requests": client.request_count,
                "totals": job.totals(),
                "peak_kb": peak_rss_kb(),
                "queries": queries[0],
            }
        )
    )


def _count_queries() -> list[int]:
    """Counts the SQL statements the worker sends, on every connection; a one-element list,
    read when the job has ended."""
    import psycopg
    from django.db import connection
    from django.db.backends.signals import connection_created

    count = [0]

    def counted(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    def install(sender, connection, **kwargs):
        if counted not in connection.execute_wrappers:
            connection.execute_wrappers.append(counted)

    connection_created.connect(install, weak=False)
    connection.ensure_connection()
    install(None, connection)
    # The page statement runs on a plain psycopg cursor (server-side binding), which Django's
    # wrappers do not see: counted here (Django's own cursors are subclasses, not counted twice).
    execute = psycopg.Cursor.execute

    def counted_plain(cursor, *args, **kwargs):
        if type(cursor) is psycopg.Cursor:
            count[0] += 1
        return execute(cursor, *args, **kwargs)

    psycopg.Cursor.execute = counted_plain
    return count


def baseline(url: str, entity_types: list[str]) -> None:
    """Plain httpx + COPY: the same pages, keyset-paged, written without any processing."""
    import httpx
    import psycopg

    from connectors.wordpress import contract

    database = _env()["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    started, cpu = time.perf_counter(), time.process_time()
    requests = records = 0
    with (
        psycopg.connect(database) as conn,
        httpx.Client(headers={contract.KEY_HEADER: KEY}, timeout=60) as http,
    ):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_engine_baseline "
            "(entity_type text, external_id text, modified_gmt text, body jsonb)"
        )
        conn.execute("TRUNCATE bench_engine_baseline")
        conn.commit()
        for entity_type in entity_types:
            endpoint = f"{url}/{contract.API_PREFIX}{contract.ENTITY_ENDPOINTS[entity_type]}"
            params: dict = {"per_page": 100}
            while True:
                response = http.get(endpoint, params=params)
                requests += 1
                response.raise_for_status()
                page = response.json()
                items = page["items"]
                with (
                    conn.cursor() as cursor,
                    cursor.copy("COPY bench_engine_baseline FROM STDIN") as copy,
                ):
                    for item in items:
                        copy.write_row(
                            (entity_type, str(item["id"]), item["modified_gmt"], json.dumps(item))
                        )
                conn.commit()
                records += len(items)
                if not items or page["total_pages"] <= 1:
                    break
                params = {
                    "per_page": 100,
                    "modified_after": items[-1]["modified_gmt"],
                    "after_id": items[-1]["id"],
                }
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "records": records,
                "requests": requests,
                "peak_kb": peak_rss_kb(),
            }
        )
    )


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _child(*args: str, env: dict | None = None) -> dict:
    """Runs a bench child; its JSON result, plus `server_cpu`: the CPU this process spent
    meanwhile, which is the simulator's (its threads are all that run here then). `env`:
    settings for the child (e.g. SYNC_PREFETCH)."""
    before = _own_cpu()
    env = {**_env(), **(env or {})}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.engine_sync", *args],
        # BENCH_COMPARE: the worker of another checkout (e.g. the commit before a change),
        # on the same site and database in the same run.
        cwd=env.pop("BENCH_WORKER_ROOT", ROOT),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in completed.stderr.splitlines():
        if line.startswith("ANALYZE"):
            print("   ", args[-1] if args else "", line, flush=True)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"bench child {args} failed:\n{completed.stdout}\n{completed.stderr}")
    return {**json.loads(lines[-1]), "server_cpu": _own_cpu() - before}


# --- Orchestrator --------------------------------------------------------------------------


def _fresh_connector(url: str, name: str):
    """A connector of the bench organisation, with every record of earlier runs removed."""
    from django.db import connection

    from accounts.models import Organisation
    from connectors.models import Connector
    from connectors.wordpress import contract
    from records.models import RECORD_MODELS

    organisation, _ = Organisation.objects.get_or_create(
        slug=ORG_SLUG, defaults={"name": "Bench engine"}
    )
    with connection.cursor() as cursor:
        # Raw deletes: the ORM's cascade collector would load every row of earlier runs.
        for model in RECORD_MODELS.values():
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE organisation_id = %s",  # noqa: S608
                [organisation.pk],
            )
        cursor.execute(
            "DELETE FROM syncjobs_synclogentry WHERE connector_id IN "
            "(SELECT id FROM connectors_connector WHERE organisation_id = %s)",
            [organisation.pk],
        )
        # Every run starts from the same tables, whatever earlier runs left: without this,
        # their deleted rows pile up (autovacuum may be off, and is slow to come anyway)
        # and each run is slower than the one before.
        tables = [model._meta.db_table for model in RECORD_MODELS.values()]
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}, syncjobs_synclogentry")
    Connector.objects.filter(organisation=organisation).delete()
    connector = Connector(
        organisation=organisation,
        name=name,
        site_url=url,
        entity_types=list(contract.ENTITY_TYPES),
        frequency=Connector.Frequency.MANUAL,
    )
    connector.api_key = KEY
    connector.save()
    return connector


def _machine() -> str:
    """Cores and load: the figures mean little without them on a shared machine."""
    one, five, _fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.1f} (1 min) / {five:.1f} (5 min)"


def _rate(records: int, seconds: float) -> float:
    return records / seconds if seconds else 0.0


def _check(result: dict, what: str) -> dict:
    if result["status"] != "COMPLETED":
        raise RuntimeError(f"{what}: job {result['status']}: {result['error']}")
    return result


def run(records: int) -> None:
    _setup_django()

    from connectors.wordpress import contract
    from wpsim import SimulatedSite, serve

    types = list(contract.ENTITY_TYPES)
    print(
        f"engine_sync: {records:,} records over {len(types)} entity types "
        "(simulator on loopback, PostgreSQL)",
        flush=True,
    )
    print(f"  machine: {_machine()}", flush=True)
    memory = {}
    small = min(MEMORY_SMALL, max(records // 10, 100))
    started = time.perf_counter()
    site = SimulatedSite(records=small, seed=11, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = _fresh_connector(server.url, "bench small")
        result = _check(_child("--worker", str(connector.pk), "FULL"), "small full sync")
        memory[small] = result["peak_kb"]

    site = SimulatedSite(records=records, seed=12, key=KEY)
    print(f"  simulator ready in {time.perf_counter() - started:.1f} s", flush=True)
    with serve(site, host="127.0.0.1", port=0) as server:
        base = _child("--baseline", server.url)
        base_rate = _rate(base["records"], base["seconds"])
        print(
            f"  baseline (httpx + COPY)      {base['seconds']:8.1f} s  {base_rate:9,.0f} records/s"
            f"  ({base['requests']:,} requests)",
            flush=True,
        )
        connector = _fresh_connector(server.url, "bench large")
        cold = _check(_child("--worker", str(connector.pk), "FULL"), "cold full sync")
        memory[records] = cold["peak_kb"]
        cold_rate = _rate(records, cold["seconds"])
        totals = cold["totals"]
        print(
            f"  cold full sync               {cold['seconds']:8.1f} s  {cold_rate:9,.0f} records/s"
            f"  [created {totals['created']:,}, failed {totals['failed']:,}]",
            flush=True,
        )
        # The machine is shared: the baseline again right after, and the ratio against the
        # mean of the two, so a neighbour's burst during one of them counts for half.
        again_base = _child("--baseline", server.url)
        again_rate = _rate(again_base["records"], again_base["seconds"])
        mean_rate = (base_rate + again_rate) / 2
        print(
            f"  baseline again               {again_base['seconds']:8.1f} s  {again_rate:9,.0f}"
            f" records/s",
            flush=True,
        )
        print(
            f"  cold full sync / baseline    ratio {cold_rate / mean_rate:.2f} "
            f"(of the mean baseline, {mean_rate:,.0f} records/s; target >= 0.45)",
            flush=True,
        )
        # Where the time goes (PostgreSQL's share is the rest; README "Performance").
        per = 1e6 / records
        print(
            f"  CPU per record               baseline: client {base['cpu'] * per:.0f} µs + "
            f"simulator {base['server_cpu'] * per:.0f} µs; cold sync: worker "
            f"{cold['cpu'] * per:.0f} µs + simulator {cold['server_cpu'] * per:.0f} µs "
            "(PostgreSQL: the rest)",
            flush=True,
        )
        again = _check(_child("--worker", str(connector.pk), "FULL"), "no-change re-sync")
        again_rate = _rate(records, again["seconds"])
        print(
            f"  no-change full re-sync       {again['seconds']:8.1f} s  {again_rate:9,.0f} "
            f"records/s  [skipped {again['totals']['skipped']:,}]",
            flush=True,
        )
        dry = _check(_child("--worker", str(connector.pk), "PREVIEW"), "no-change preview")
        print(
            f"  no-change preview (dry run)  {dry['seconds']:8.1f} s  "
            f"{_rate(records, dry['seconds']):9,.0f} records/s  [would skip "
            f"{dry['totals']['skipped']:,}] ratio to the re-sync's rate "
            f"{_rate(records, dry['seconds']) / again_rate:.2f} (target >= 1.00)",
            flush=True,
        )
        idle = _check(_child("--worker", str(connector.pk), "INCREMENTAL"), "no-change incr.")
        target = len(types)
        print(
            f"  no-change incremental        {idle['seconds']:8.1f} s  {idle['requests']} requests"
            f" (target {target}: one per entity type, deletions included)",
            flush=True,
        )
        site.clock.advance(5)
        changed = 0
        for entity_type in types:
            changed += len(site.edit(entity_type, max(1, site.count(entity_type) // 100)))
        incr = _check(_child("--worker", str(connector.pk), "INCREMENTAL"), "incremental 1%")
        print(
            f"  incremental, 1% changed      {incr['seconds']:8.1f} s  {incr['requests']} requests"
            f"  ({changed:,} records changed, updated {incr['totals']['updated']:,})",
            flush=True,
        )
    print(f"  machine after: {_machine()}", flush=True)
    ratio = memory[records] / memory[small]
    print(
        f"  worker peak memory           {small:,} records: {memory[small] / 1024:.0f} MB, "
        f"{records:,} records: {memory[records] / 1024:.0f} MB, ratio {ratio:.2f} "
        "(target <= 1.20)",
        flush=True,
    )


# The engine with and without each of its concurrencies: the next-page prefetch and the
# page writer thread (issue 20: the mapper process, the older write-behind with its wrapped
# store, bitmap/Bloom filters, gc.freeze and planner steering were measured this way and
# removed).
VARIANTS = (
    ("engine", {}),
    ("engine without prefetch", {"SYNC_PREFETCH": "false"}),
    ("engine without write-behind", {"SYNC_WRITE_BEHIND": "false"}),
    ("engine, switch interval 5 ms", {"SYNC_SWITCH_INTERVAL_MS": "5"}),
)


def run_variants(records: int, rounds: int = 1) -> None:
    """One run, one site: the cold full sync, the no-change full re-sync and the no-change
    incremental of each variant, between two baselines. BENCH_COMPARE=<path> adds the same
    runs by the worker of another checkout of the project (same schema), e.g. an export of
    the commit before a change: `git archive <commit> | tar -x -C <path>`.

    `rounds` > 1 runs the variants again, each round in the reverse order of the one before
    (a machine whose load drifts favours neither end), and keeps each variant's fastest
    cold sync and re-sync."""
    _setup_django()
    from connectors.wordpress import contract
    from wpsim import SimulatedSite, serve

    print(f"engine_sync variants: {records:,} records; machine: {_machine()}", flush=True)
    site = SimulatedSite(records=records, seed=12, key=KEY)
    runs: dict[str, list[tuple[dict, dict, dict]]] = {}
    variants = list(VARIANTS)
    if os.environ.get("BENCH_VARIANTS"):  # e.g. "engine;engine without prefetch"
        wanted = os.environ["BENCH_VARIANTS"].split(";")
        variants = [(label, env) for label, env in variants if label in wanted]
    if os.environ.get("BENCH_COMPARE"):
        compare = os.environ["BENCH_COMPARE"]
        variants.append((f"worker of {compare}"[:30], {"BENCH_WORKER_ROOT": compare}))
    with serve(site, host="127.0.0.1", port=0) as server:
        bases = [_child("--baseline", server.url)]
        for round_number in range(rounds):
            ordered = variants if round_number % 2 == 0 else variants[::-1]
            for label, env in ordered:
                connector = _fresh_connector(server.url, "bench variants")
                cold = _check(_child("--worker", str(connector.pk), "FULL", env=env), label)
                again = _check(_child("--worker", str(connector.pk), "FULL", env=env), label)
                idle = _child("--worker", str(connector.pk), "INCREMENTAL", env=env)
                runs.setdefault(label, []).append((cold, again, _check(idle, label)))
                print(
                    f"  measured: {label} (cold {cold['seconds']:.1f} s, re-sync "
                    f"{again['seconds']:.1f} s)",
                    flush=True,
                )
        bases.append(_child("--baseline", server.url))
    rows = [
        (
            label,
            min((cold for cold, _, _ in measured), key=lambda run: run["seconds"]),
            min((again for _, again, _ in measured), key=lambda run: run["seconds"]),
            measured[0][2],
        )
        for label, measured in runs.items()
    ]
    mean = sum(_rate(b["records"], b["seconds"]) for b in bases) / len(bases)
    print(f"  baseline (httpx + COPY), mean of before/after: {mean:,.0f} records/s")
    print(
        f"  {'variant':<30} {'cold s':>7} {'ratio':>6} {'CPU µs/rec':>10} {'re-sync s':>9} "
        f"{'CPU µs/rec':>10} {'incr req':>8} {'incr queries':>12} {'incr CPU ms':>11}"
    )
    for label, cold, again, idle in rows:
        ratio = _rate(records, cold["seconds"]) / mean
        cpu, again_cpu = (run["cpu"] * 1e6 / records for run in (cold, again))
        print(
            f"  {label:<30} {cold['seconds']:7.1f} {ratio:6.2f} {cpu:10.0f} "
            f"{again['seconds']:9.1f} {again_cpu:10.0f} "
            f"{idle['requests']:8} {idle['queries']:12} {idle['cpu'] * 1000:11.0f}",
            flush=True,
        )
    print(f"  machine after: {_machine()}  ({len(contract.ENTITY_TYPES)} entity types)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_sync")
    parser.add_argument(
        "--records", type=int, default=int(os.environ.get("BENCH_RECORDS", "100000"))
    )
    parser.add_argument("--worker", nargs=2, metavar=("CONNECTOR", "KIND"))
    parser.add_argument("--baseline", metavar="URL")
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="--variants: rounds, alternating")
    args = parser.parse_args(argv or [])
    if args.worker:
        worker(int(args.worker[0]), args.worker[1])
    elif args.baseline:
        from connectors.wordpress import contract

        baseline(args.baseline, list(contract.ENTITY_TYPES))
    elif args.variants:
        run_variants(args.records, args.rounds)
    else:
        run(args.records)


if __name__ == "__main__":
    main(sys.argv[1:])
