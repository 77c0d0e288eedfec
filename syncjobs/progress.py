"""A job's progress figures for the status cards (the job page's and the connector
Overview's), read from job.stats alone: never a count of log rows."""

from records.models import RECORD_MODELS, EntityType
from syncjobs.engine.plan import COUNTER_KEYS as ENGINE_COUNTER_KEYS
from syncjobs.models import SyncJob
from web.templatetags.dashboard import percent

# The per-type counters of the status card's table (templates/syncjobs/_status_card.html):
# the engine's, less the two the card shows as its progress column.
COUNTER_KEYS = tuple(k for k in ENGINE_COUNTER_KEYS if k not in ("total", "processed"))


def job_progress(job: SyncJob) -> dict:
    """Progress figures from job.stats only (the status endpoint never counts log rows).

    The engine learns an entity type's total when it reaches that type, in this order. Until
    the last type has started (and for ever, when a job failed or was cancelled before it),
    the sum of totals is not the job's size: the types not reached are marked, and the bar
    shows an estimate by entity type instead of a false 100%."""
    rows = []
    active = job.is_active
    for entity_type in EntityType.values:
        counters = (job.stats or {}).get(entity_type)
        if not isinstance(counters, dict):
            continue
        current = entity_type == job.current_entity_type
        rows.append(
            {
                "entity_type": entity_type,
                "label": EntityType(entity_type).label,
                "plural": RECORD_MODELS[entity_type]._meta.verbose_name_plural,
                "total": counters.get("total") or 0,
                "processed": counters.get("processed") or 0,
                # Every counter the card shows, 0 when absent: a missing dict key costs the
                # template engine a failed lookup (exception + dir()) per cell per poll.
                "counters": {
                    **counters,
                    **{key: counters.get(key) or 0 for key in COUNTER_KEYS},
                },
                "current": current,
                "current_and_active": current and active,
                "waiting": False,
            }
        )
    if job.status != SyncJob.Status.COMPLETED:
        order = [row["entity_type"] for row in rows]
        current = order.index(job.current_entity_type) if job.current_entity_type in order else -1
        for index, row in enumerate(rows):
            # A type with figures has started, whatever current_entity_type says.
            row["waiting"] = index > current and not (row["total"] or row["processed"])
    waiting = sum(1 for row in rows if row["waiting"])
    totals = job.totals()
    elapsed = job.duration.total_seconds() if job.duration else 0
    processed = totals.get("processed", 0)
    return {
        "rows": rows,
        "totals": totals,
        "processed": processed,
        # For the card's links to the failed and conflicting rows (0, not a missing key).
        "failed": totals.get("failed", 0),
        "conflicts": totals.get("conflicts", 0),
        "push_failed": totals.get("push_failed", 0),
        "total": totals.get("total", 0),
        "percent": percent(processed, totals.get("total", 0)),
        "totals_known": bool(rows) and not waiting,
        "types_started": len(rows) - waiting,
        "estimate": _estimate(job, rows),
        "rate": round(processed / elapsed, 1) if elapsed > 0 and processed else None,
    }


def _estimate(job: SyncJob, rows: list[dict]) -> int:
    """Percent done while some types' sizes are still unknown. Weighed by records: a type not
    reached yet counts with the size the previous full walk found (job.expected_sizes), so
    1,000 articles done of 1,000 with 3,000 members to come is 25 %, not "1 of 2 types". Only
    when a waiting type has no such size does it fall back to a share per type."""
    expected = job.expected_sizes or {}
    if all(not row["waiting"] or isinstance(expected.get(row["entity_type"]), int) for row in rows):
        size = done = 0
        for row in rows:
            row_size = expected[row["entity_type"]] if row["waiting"] else row["total"]
            size += row_size
            done += min(row["processed"], row_size)
        if size:
            return round(100 * done / size)
    done = 0.0
    for row in rows:
        if row["waiting"]:
            continue
        if row["total"]:
            done += min(row["processed"] / row["total"], 1.0)
        elif not (row["current"] and job.is_active):
            done += 1.0  # a type with nothing to sync is done once passed
    return round(100 * done / len(rows)) if rows else 0
