"""Saving a page row by row through the ORM, so that only the rows the database refuses fail."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import psycopg
from django.db import DataError, IntegrityError, transaction

from connectors.models import Connector
from records.models import RECORD_MODELS
from syncjobs.engine.plan import LogLine, PageCommit, Write, record_label
from syncjobs.models import SyncJob, SyncLogEntry

logger = logging.getLogger(__name__)

# What the database (or psycopg, for a value PostgreSQL cannot hold, such as a NUL character
# in text, refused before sending) answers a row it will not store.
REFUSALS = (IntegrityError, DataError, psycopg.IntegrityError, psycopg.DataError)


class RowWrites:
    """DjangoStore's careful path (a mixin): a page the one statement could not store, or
    every page on a database other than PostgreSQL (the demo's SQLite)."""

    def _commit_row_by_row(self, page: PageCommit, now: datetime) -> bool:
        entity_type, logs, cursors = page.entity_type, page.logs, page.cursors
        with transaction.atomic():
            if page.writes:
                for write in self._upsert(entity_type, page.writes, now):
                    # The database refused a row the engine counted as written.
                    counters = page.stats[entity_type]
                    counters["created" if write.existing is None else "updated"] -= 1
                    counters["failed"] += 1
            # In the page's transaction (the replaced rows go only with their replacements),
            # and before its own log rows go in, which it would delete too afterwards.
            self._forget_replaced(logs)
            if logs:
                self._insert_logs(logs, now)
            if cursors != self.connector.cursors:
                Connector.objects.filter(pk=self.connector.pk).update(cursors=cursors)
            self.connector.cursors = dict(cursors)
            jobs = SyncJob.objects.filter(pk=self.job.pk)
            jobs.update(stats=page.stats, current_entity_type=entity_type, heartbeat_at=now)
            return jobs.filter(cancel_requested_at__isnull=False).exists()

    def _forget_replaced(self, logs: list[LogLine]) -> None:
        """Delete this job's earlier rows of the records these lines replace."""
        replaced = [line for line in logs if line.replaces]
        for entity_type in {line.entity_type for line in replaced}:
            SyncLogEntry.objects.filter(
                job_id=self.job.pk,
                entity_type=entity_type,
                external_id__in=[
                    line.external_id[:64] for line in replaced if line.entity_type == entity_type
                ],
            ).delete()

    def _insert_logs(self, logs: list[LogLine], now: datetime) -> None:
        SyncLogEntry.objects.bulk_create(
            [self._log_entry(line, now) for line in logs], batch_size=500
        )

    def _upsert_rows(self, entity_type: str, rows: list[dict]) -> dict[str, Any]:
        """The ORM's portable upsert of these rows; returns {external_id: pk}, the pk the
        database kept (PostgreSQL and SQLite return it)."""
        model = RECORD_MODELS[entity_type]
        names = {f.attname for f in model._meta.concrete_fields}
        records = [model(**{k: v for k, v in row.items() if k in names}) for row in rows]
        model.objects.bulk_create(
            records,
            update_conflicts=True,
            unique_fields=["connector", "external_id"],
            update_fields=sorted(self._updated_fields(entity_type)),
        )
        return {record.external_id: record.pk for record in records}

    def _log_entry(self, line: LogLine, now: datetime) -> SyncLogEntry:
        return SyncLogEntry(
            job_id=self.job.pk,
            connector_id=self.connector.pk,
            entity_type=line.entity_type,
            external_id=line.external_id[:64],
            internal_id=line.internal_id,
            operation=line.operation,
            status=line.status,
            error=line.error,
            processed_at=now,
        )

    def _row(self, entity_type: str, write: Write, now: datetime) -> dict:
        ex = write.existing
        return {
            "id": ex.pk if ex is not None else uuid.uuid4(),
            **self._shared_columns(now),
            "external_id": write.mapped.external_id,
            "content_hash": write.hash,
            "source_modified_at": write.mapped.modified_gmt,
            "platform_modified_at": None
            if (ex is None or write.clear_platform_edit)
            else ex.platform_modified_at,
            **write.mapped.values,
            **write.files,
        }

    def _upsert(self, entity_type: str, writes: list[Write], now: datetime) -> list[Write]:
        """INSERT … ON CONFLICT (connector, external_id) DO UPDATE for the page's writes.

        Returns the writes the database refused (now FAILED). RETURNING gives the real pk of
        every row, so log rows point at the record even if it was inserted concurrently.
        """
        model = RECORD_MODELS[entity_type]
        released = [pk for write in writes for pk in write.release_pks]
        if released:
            model.objects.filter(pk__in=released, archived_at__isnull=False).update(slug="")
        rows = [self._row(entity_type, write, now) for write in writes]
        moving = self._moving_slugs(model, writes)
        refused: list[Write] = []
        pks: dict[str, Any] = {}
        try:
            with transaction.atomic():
                if moving:
                    model.objects.filter(pk__in=moving).update(slug="")
                pks = self._upsert_rows(entity_type, rows)
        except REFUSALS as exc:
            # A constraint the pre-checks could not foresee (a concurrent writer took the
            # slug): save one by one so only the culprits fail.
            logger.info("bulk upsert of %s page failed (%s); retrying row by row", entity_type, exc)
            for write, row in zip(writes, rows, strict=True):
                try:
                    with transaction.atomic():
                        pks.update(self._upsert_rows(entity_type, [row]))
                except REFUSALS as row_exc:
                    write.log.status = "FAILED"
                    write.log.error = (
                        f"{record_label(entity_type, write.mapped.external_id)}: "
                        + _refusal(row_exc, row)
                    )
                    write.log.internal_id = write.existing.pk if write.existing else None
                    refused.append(write)
        for write in writes:
            if write.log.status != "FAILED":
                write.log.internal_id = pks.get(write.mapped.external_id)
        return refused


def _refusal(exc: Exception, row: dict) -> str:
    """The database's refusal of one row, in an admin's words where we know the constraint."""
    diag = getattr(exc, "diag", None) or getattr(exc.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    sqlite_slug = str(exc).startswith("UNIQUE constraint failed") and str(exc).endswith(".slug")
    if constraint.endswith("_unique_slug_per_org") or sqlite_slug:
        return (
            f"duplicate slug {row.get('slug')!r}: another record of this organisation took it "
            "while this one was being saved (slugs are unique in an organisation)."
        )
    return "the database refused it: " + str(exc).splitlines()[0]
