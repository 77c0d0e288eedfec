"""The store's archiving: live records a full walk did not see, and those WordPress deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from records.models import RECORD_MODELS
from syncjobs.engine.page_writes import bound_rows
from syncjobs.models import HeldDeletion, SyncLogEntry


class ArchiveWalk:
    """DjangoStore's archiving (a mixin: the job, the connector and _probe are the store's)."""

    def archive_unseen(
        self, entity_type: str, after: Any, limit: int
    ) -> tuple[list[tuple[str, Any]], Any]:
        """Archive the connector's live records (one batch, in external id order after
        `after`) that have no log row in this job; returns (archived, where to continue or
        None when done).
        """
        doomed, after = self.unseen(entity_type, after, limit)
        return (self.archive_records(entity_type, doomed) if doomed else []), after

    def live_count(self, entity_type: str) -> int:
        return (
            RECORD_MODELS[entity_type]
            .objects.filter(connector_id=self.connector.pk, archived_at__isnull=True)
            .count()
        )

    def archive_records(self, entity_type: str, doomed: list[tuple[str, Any]]):
        """Archive these (external_id, pk) records, those still live; returns them."""
        model = RECORD_MODELS[entity_type]
        live = set(
            model.objects.filter(
                pk__in=[pk for _, pk in doomed], archived_at__isnull=True
            ).values_list("pk", flat=True)
        )
        model.objects.filter(pk__in=live).update(archived_at=timezone.now())
        return [(external_id, pk) for external_id, pk in doomed if pk in live]

    def hold(self, entity_type: str, external_ids: list[str], live: int) -> int:
        """Keep the records a full walk would archive as a HeldDeletion, for an
        administrator to decide (syncjobs.deletion_guard). Returns how many."""
        HeldDeletion.objects.create(
            connector_id=self.connector.pk,
            job_id=self.job.pk,
            entity_type=entity_type,
            external_ids=external_ids,
            live_count=live,
        )
        return len(external_ids)

    def unseen(self, entity_type: str, after: Any, limit: int):
        """One batch of the archive walk, archiving nothing: (external_id, pk) of the live
        records without a log row in this job, and where to continue (None when done); the
        deletion guard's and the preview's walk."""
        model = RECORD_MODELS[entity_type]
        if connection.vendor == "postgresql":
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(ARCHIVE_WALK_PLANNING)
                cursor.execute(*archive_walk_sql(model, self.connector.pk, after or "", limit))
                batch = cursor.fetchall()
        else:
            live = model.objects.filter(connector_id=self.connector.pk, archived_at__isnull=True)
            if after is not None:
                live = live.filter(external_id__gt=after)
            batch = list(live.order_by("external_id").values_list("pk", "external_id")[:limit])
        if not batch:
            return [], None
        logged = self._logged(entity_type, [external_id for _, external_id in batch])
        doomed = [(external_id, pk) for pk, external_id in batch if external_id not in logged]
        return doomed, (batch[-1][1] if len(batch) == limit else None)

    def _logged(self, entity_type: str, external_ids: list[str]) -> set[str]:
        """Which of these records already have a log row in this job (one query)."""
        return set(self._log_rows(entity_type, external_ids))

    def _log_rows(
        self, entity_type: str, external_ids: list[str]
    ) -> dict[str, list[tuple[str, str]]]:
        """This job's log rows of these records: {external_id: [(operation, status)]}."""
        if connection.vendor == "postgresql":
            rows = bound_rows(LOGGED_SQL, [list(external_ids), self.job.pk, entity_type])
        else:
            rows = SyncLogEntry.objects.filter(
                job_id=self.job.pk, entity_type=entity_type, external_id__in=external_ids
            ).values_list("external_id", "operation", "status")
        found: dict[str, list[tuple[str, str]]] = {}
        for external_id, operation, status in rows:
            found.setdefault(external_id, []).append((operation, status))
        return found

    def archive_deleted(
        self, entity_type: str, entries: list[tuple[str, datetime]]
    ) -> list[tuple[str, Any]]:
        doomed = self._deletable(entity_type, entries)
        if doomed:
            RECORD_MODELS[entity_type].objects.filter(pk__in=[pk for _, pk in doomed]).update(
                archived_at=timezone.now()
            )
        return doomed

    def _deletable(
        self, entity_type: str, entries: list[tuple[str, datetime]]
    ) -> list[tuple[str, Any]]:
        """The live records these deletion entries archive (read only; a preview's too)."""
        model = RECORD_MODELS[entity_type]
        deleted_at: dict[str, datetime] = {}
        for external_id, deleted in entries:
            if external_id not in deleted_at or deleted > deleted_at[external_id]:
                deleted_at[external_id] = deleted
        columns = ["id", "external_id", "source_modified_at", "archived_at"]
        rows = self._probe(
            model, columns, "connector_id", self.connector.pk, "external_id", list(deleted_at)
        )
        # §8.1: deleted only if the deletion is not older than the version we pulled
        # (a restored post comes back with a newer modified_gmt and stays live).
        doomed = [
            (row["external_id"], row["id"])
            for row in rows
            if row["archived_at"] is None
            and (
                row["source_modified_at"] is None
                or deleted_at[row["external_id"]] >= row["source_modified_at"]
            )
        ]
        return doomed


# The walk must be an ordered scan of the unique (connector, external_id) index that stops
# after `limit` rows. With statistics that underestimate the connector's records (those of an
# emptier table, during a cold import), the planner chose a bitmap scan or a table scan, then
# a sort, which reads every remaining record for each batch: quadratic, 30-40 ms a batch at
# 100,000 records. Set for the walk's own transaction only.
ARCHIVE_WALK_PLANNING = (
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
)


def archive_walk_sql(model, connector_id: Any, after: str, limit: int) -> tuple[str, list]:
    """One batch of the keyset walk over the connector's live records, run after
    ARCHIVE_WALK_PLANNING; the row comparison only the unique index can serve keeps it on
    that index whatever the statistics (see store.probe_sql)."""
    table = connection.ops.quote_name(model._meta.db_table)
    return (
        f"SELECT id, external_id FROM {table} "  # noqa: S608
        "WHERE connector_id = (SELECT %s::bigint) "
        "AND (connector_id, external_id) > ((SELECT %s::bigint), %s) "
        "AND archived_at IS NULL ORDER BY connector_id, external_id LIMIT %s",
        [connector_id, connector_id, after, limit],
    )


# This job's log rows of a batch of records: one probe of the (job, external_id) index per
# record. Planned as a join, it read every log row of the job per batch (30 ms a batch at
# 100,000 rows); `entity_type || ''` keeps the planner off the (job, entity_type) index,
# which reads the whole phase's log. Parameters: the external ids, the job's id, the type.
LOGGED_SQL = (
    "SELECT k.v, seen.operation, seen.status FROM unnest(%s::text[]) AS k(v) "
    "CROSS JOIN (SELECT %s::bigint AS id) AS j CROSS JOIN LATERAL (SELECT "
    "l.operation, l.status FROM syncjobs_synclogentry l "
    "WHERE l.job_id = j.id AND l.external_id = k.v "
    "AND (l.job_id, l.external_id) >= (j.id, k.v) "
    "AND l.entity_type || '' = %s OFFSET 0) AS seen"
)
