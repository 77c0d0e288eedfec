"""The engine's store on the Django ORM (PostgreSQL in production and tests).

Every method is a fixed number of queries for a whole page, never one per record: one
query loads the page's existing records by external id, one checks its slugs, and ONE
statement (on PostgreSQL) writes the page: the upsert (INSERT … ON CONFLICT (connector,
external_id) DO UPDATE), its log rows, the cursors and the job's progress, returning the
cancel flag. A page is therefore one transaction, so a crash keeps every page committed
before it and a re-run upserts on the same (connector, external_id) keys: no duplicates.
When the database refuses a row, the page is saved again row by row (savepoints) so only
the culprits fail. Other databases (the demo's SQLite) take that careful path always.

The page's rows travel as one JSON document (json_to_recordset), and the statement runs in a
writer thread on a connection of its own while the engine decides the next page
(write-behind, see commit_page): at most one page in flight, and every read that could
depend on it waits for it first.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import mimetypes
import posixpath
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, connection, connections, transaction
from django.db.models import F, JSONField, Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from connectors.models import Connector
from connectors.wordpress.errors import WordPressError
from connectors.wordpress.guard import GuardedTransport, OutboundGuard
from records.models import RECORD_MODELS
from syncjobs.engine.core import (
    Existing,
    JobCancelled,
    LogLine,
    MirrorFailed,
    SlugHolder,
    Write,
    bench_without,
    record_label,
)
from syncjobs.engine.mapping import MAPPINGS, content_payload
from syncjobs.models import HeldDeletion, SyncJob, SyncLogEntry

logger = logging.getLogger(__name__)

# Which model field receives the mirrored copy of which URL field.
MIRRORED_FILES = {"article": ("featured_image_url", "featured_image")}
MIRROR_MAX_BYTES = 5 * 1024 * 1024
# Accepted image types, checked against the file's first bytes (not only the header).
IMAGE_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_ABSENT = object()
# What the database (or psycopg, for a value PostgreSQL cannot hold, such as a NUL character
# in text, refused before sending) answers a row it will not store. The COPY of the row-by-row
# path goes through psycopg directly, so its errors are psycopg's, not Django's wrappers.
REFUSALS = (IntegrityError, DataError, psycopg.IntegrityError, psycopg.DataError)


@dataclass
class _Statement:
    sql: str
    params: list
    released: list  # archived records whose slug a write takes over
    moving: list  # records of the page that change slug


# A written-behind page the database refused: the row-by-row path saves it (_settle).
_REFUSED = object()


@dataclass
class _InFlight:
    """A page handed to the writer thread, and what the next page's reads must not miss."""

    future: Future
    entity_type: str
    external_ids: set
    slugs: set
    # The page lets go of slugs (archived holders, records changing slug): any slug lookup
    # of its type may depend on it, so every read of that type waits for it.
    moves_slugs: bool
    # For the row-by-row path, should the database refuse the statement.
    args: tuple
    live_stats: dict


def _existing(row: dict, file_fields, *, synced_in_job: bool = False) -> Existing:
    """The engine's view of a stored record, from a row of the record's table (the page
    lookup's and the pending-push walk's: same columns)."""
    return Existing(
        pk=row["id"],
        external_id=row["external_id"],
        content_hash=row["content_hash"],
        source_modified_at=row["source_modified_at"],
        platform_modified_at=row["platform_modified_at"],
        archived_at=row["archived_at"],
        slug=row.get("slug", ""),
        files={name: row[name] for pair in file_fields for name in pair},
        mirror_missing=any(row[url] and not row[name] for url, name in file_fields),
        push_refused_at=row["push_refused_at"],
        synced_in_job=synced_in_job,
    )


class DjangoStore:
    def __init__(self, job: SyncJob, connector: Connector, *, write_behind: bool | None = None):
        self.job = job
        self.connector = connector
        self.mirror_enabled = connector.mirror_images
        self._downloader: ImageDownloader | None = None
        self._sql_cache: dict = {}
        self._session_ready = False
        if write_behind is None:
            write_behind = getattr(settings, "SYNC_WRITE_BEHIND", True)
            write_behind = write_behind and not bench_without("writebehind")
        self.write_behind = write_behind
        self._writer: ThreadPoolExecutor | None = None
        self._writer_session_ready = False  # only read and set in the writer thread
        self._in_flight: _InFlight | None = None

    def close(self) -> None:
        if self._in_flight is not None:
            # The engine stopped with a page still being written (it raised meanwhile): let
            # that page finish, as a page committed before a failure always was.
            try:
                self._settle()
            except JobCancelled:
                pass  # the job is ending anyway; the page itself was stored
            except Exception:  # the job already failed: that is what it reports
                logger.exception("the last page of sync job %s failed to store", self.job.pk)
        if self._writer is not None:
            # The writer thread's connection is its own: close it there, then the thread.
            self._writer.submit(connections.close_all).result()
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._downloader is not None:
            self._downloader.client.close()
        if self._session_ready:
            # The connection outlives the job (a worker runs many): leave it as it was.
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")

    def flush(self) -> None:
        """Wait for the page being written, if any. Raises what storing it raised, or
        JobCancelled when its statement saw a cancel request. The runner calls it after the
        engine's last phase: the engine's last commit may still be in the writer thread."""
        self._settle()

    def _settle(self, *, entity_type: str | None = None, ids=(), slugs=()) -> None:
        """Wait for the page in flight before a read that depends on it (or before any other
        write). With `entity_type`, only when the page wrote one of these records or slugs
        of that type: other reads see the same rows whether it has committed or not."""
        flight = self._in_flight
        if flight is None:
            return
        if entity_type is not None:
            if flight.entity_type != entity_type:
                return
            related = flight.moves_slugs or not flight.external_ids.isdisjoint(ids)
            if not related and flight.slugs.isdisjoint(slugs):
                return
        self._in_flight = None
        outcome = flight.future.result()  # re-raises what the writer thread raised
        if outcome is _REFUSED:
            outcome = self._commit_refused_page(flight)
        if outcome:
            raise JobCancelled()

    # Reads --------------------------------------------------------------------------------

    def existing(self, entity_type: str, external_ids: list[str]) -> dict[str, Existing]:
        self._settle(entity_type=entity_type, ids=external_ids)
        model = RECORD_MODELS[entity_type]
        file_fields = self._file_fields(entity_type)
        columns = [
            "id",
            "external_id",
            "content_hash",
            "source_modified_at",
            "platform_modified_at",
            "push_refused_at",
            "archived_at",
            "last_synced_at",
        ]
        if model.has_slug:
            columns.append("slug")
        columns += [f for pair in file_fields for f in pair]
        started = self.job.started_at
        found = {}
        for row in self._probe(
            model, columns, "connector_id", self.connector.pk, "external_id", external_ids
        ):
            found[row["external_id"]] = _existing(
                row,
                file_fields,
                synced_in_job=bool(
                    started and row["last_synced_at"] and row["last_synced_at"] >= started
                ),
            )
        return found

    def has_records(self, entity_type: str, *, organisation: bool = False) -> bool:
        """Whether the connector (or, with `organisation`, any connector of its organisation,
        or none) has any record of this type, archived ones included."""
        records = RECORD_MODELS[entity_type].objects
        if organisation:
            return records.filter(organisation_id=self.connector.organisation_id).exists()
        return records.filter(connector_id=self.connector.pk).exists()

    def _probe(
        self, model, columns: list[str], scope: str, scope_id: Any, key: str, values: list[str]
    ) -> list[dict]:
        """Rows of `model` WHERE scope = scope_id AND key = one of `values`, one probe of the
        unique (scope, key) index per value.

        Not `scope = 7 AND key IN (…)` on purpose: during a cold import the table's statistics
        are stale (never analysed, or they only know other connectors), the planner estimates
        "connector 7" at one row and reads *every* row of the connector through the
        single-column foreign key index, for each page: a sync became quadratic. See
        probe_sql() for the form that only the composite index can serve.
        """
        if connection.vendor != "postgresql" or bench_without("steering"):
            lookup = {scope: scope_id, f"{key}__in": values}
            return list(model.objects.filter(**lookup).values(*columns))
        with _bound_cursor() as cursor:
            cursor.execute(self.probe_sql(model, columns, scope, key), [list(values), scope_id])
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    @staticmethod
    def probe_sql(model, columns: list[str], scope: str, key: str) -> str:
        """_probe's statement; parameters: the values (a list), then the scope's id.

        Each value is one LATERAL lookup whose condition repeats the two equalities as a row
        comparison `(scope, key) >= (id, v)`: only an index on exactly (scope, key) can use
        it, which tips the planner to the composite index even when its row estimates are
        wrong, and the equalities keep the probe exact (tests/engine/test_store.py).
        """
        qn = connection.ops.quote_name
        table = qn(model._meta.db_table)
        listed = ", ".join(f"r.{qn(c)}" for c in columns)
        inner = ", ".join(qn(c) for c in columns)
        extra = f" AND {qn(key)} <> ''" if key == "slug" else ""  # the partial index's predicate
        return (
            f"SELECT {listed} FROM unnest(%s::text[]) AS k(v) "  # noqa: S608
            "CROSS JOIN (SELECT %s::bigint AS id OFFSET 0) AS s CROSS JOIN LATERAL "
            f"(SELECT {inner} FROM {table} WHERE {qn(scope)} = s.id AND {qn(key)} = k.v "
            f"AND ({qn(scope)}, {qn(key)}) >= (s.id, k.v){extra} LIMIT 1) AS r"
        )

    def slug_holders(self, entity_type: str, slugs: list[str]) -> dict[str, SlugHolder]:
        self._settle(entity_type=entity_type, slugs=slugs)
        model = RECORD_MODELS[entity_type]
        label = "name" if entity_type == "company" else "title"
        columns = ["id", "slug", "external_id", "connector_id", label, "archived_at"]
        rows = self._probe(
            model, columns, "organisation_id", self.connector.organisation_id, "slug", slugs
        )
        names = {self.connector.pk: self.connector.name}
        others = {row["connector_id"] for row in rows} - {None, self.connector.pk}
        if others:
            names.update(Connector.objects.filter(pk__in=others).values_list("pk", "name"))
        return {
            row["slug"]: SlugHolder(
                pk=row["id"],
                external_id=row["external_id"],
                connector_id=row["connector_id"],
                connector_name=names.get(row["connector_id"], ""),
                label=row[label],
                archived=row["archived_at"] is not None,
                releasable=row["archived_at"] is not None
                and row["connector_id"] == self.connector.pk,
            )
            for row in rows
        }

    def pending_pushes(
        self, entity_type: str, after: Any, limit: int
    ) -> tuple[list[tuple[Existing, dict]], Any]:
        """Two-way: one batch (external id order, after `after`) of this connector's live
        records edited on the platform since they were last synced and not logged in this job
        yet, each with its mapped fields' values; returns (batch, where to continue or None).

        Two queries per batch, never one per record: the candidates through the partial
        `<type>_pending_push_idx` index (live records with a platform edit only: a handful,
        however large the table), then _log_rows()'s index probes of this job's log, not an
        anti-join the planner may run as a scan of the whole log per candidate. The edit is
        pending when it is newer than both the WordPress version last stored (what a full
        sync compares, see SyncEngine._decide) and the last sync on the platform's own clock,
        and WordPress has not refused it for good (refuse_pushes).
        """
        model = RECORD_MODELS[entity_type]
        names = [spec.name for spec in MAPPINGS[entity_type]]
        file_fields = self._file_fields(entity_type)
        columns = ["id", "external_id", "content_hash", "source_modified_at"]
        columns += ["platform_modified_at", "push_refused_at", "archived_at"]
        if model.has_slug:
            columns.append("slug")
        columns += [f for pair in file_fields for f in pair] + names
        rows = list(
            model.objects.filter(
                connector_id=self.connector.pk,
                platform_modified_at__isnull=False,
                archived_at__isnull=True,
                external_id__gt=after or "",
            )
            .filter(
                Q(source_modified_at__isnull=True)
                | Q(platform_modified_at__gt=F("source_modified_at")),
                Q(last_synced_at__isnull=True) | Q(platform_modified_at__gt=F("last_synced_at")),
                Q(push_refused_at__isnull=True) | Q(platform_modified_at__gt=F("push_refused_at")),
            )
            .order_by("external_id")
            .values(*dict.fromkeys(columns))[:limit]
        )
        if not rows:
            return [], None
        logged = self._logged(entity_type, [row["external_id"] for row in rows])
        batch = []
        for row in rows:
            if row["external_id"] in logged:
                continue  # decided in this job's pages (pushed, failed, or a conflict)
            batch.append((_existing(row, file_fields), {name: row[name] for name in names}))
        return batch, (rows[-1]["external_id"] if len(rows) == limit else None)

    def logged_in_job(
        self, entity_type: str, external_ids: list[str]
    ) -> dict[str, list[tuple[str, str]]]:
        """This job's log rows of these records, as {external_id: [(operation, status)]}
        (one query). Only read: a later version's log line that replaces them deletes them
        in its page's own statement (LogLine.replaces, REPLACED_LOGS_SQL). Like every public
        method not in _SETTLE_THEMSELVES, it waits for the page in flight first."""
        return self._log_rows(entity_type, external_ids)

    def _forget_replaced(self, cursor, logs: list[LogLine]) -> None:
        """In the row-by-row page's transaction, before its log rows are inserted: delete
        this job's earlier rows of the records these lines replace."""
        replaced = [line for line in logs if line.replaces]
        if not replaced:
            return
        if connection.vendor == "postgresql":
            cursor.execute(REPLACED_LOGS_SQL, _replaced_params(self.job.pk, replaced))
            return
        for entity_type in {line.entity_type for line in replaced}:
            SyncLogEntry.objects.filter(
                job_id=self.job.pk,
                entity_type=entity_type,
                external_id__in=[
                    line.external_id[:64] for line in replaced if line.entity_type == entity_type
                ],
            ).delete()

    def refuse_pushes(self, entity_type: str, refused: list[tuple[Any, datetime]]) -> None:
        """Remember that WordPress refused these records' platform edits for good: each
        (pk, platform_modified_at) marks that edit, in one statement. A record edited again
        meanwhile (a newer platform_modified_at) is left pending: its new edit was not refused.
        """
        if not refused:
            return
        match = Q(pk__in=[])
        for pk, edited_at in refused:
            match |= Q(pk=pk, platform_modified_at=edited_at)
        RECORD_MODELS[entity_type].objects.filter(match).update(
            push_refused_at=F("platform_modified_at")
        )

    def platform_values(self, entity_type: str, pk: Any) -> dict:
        model = RECORD_MODELS[entity_type]
        names = [spec.name for spec in MAPPINGS[entity_type]]
        return model.objects.filter(pk=pk).values(*names).get()

    # Files --------------------------------------------------------------------------------

    def _file_fields(self, entity_type: str) -> list[tuple[str, str]]:
        pair = MIRRORED_FILES.get(entity_type)
        return [pair] if pair and self.mirror_enabled else []

    def mirror(self, entity_type: str, write: Write) -> dict:
        files = {}
        for url_field, file_field in self._file_fields(entity_type):
            url = write.mapped.values.get(url_field) or ""
            existing = write.existing
            if not url:
                files[file_field] = ""
                continue
            unchanged_url = (
                existing is not None
                and existing.files.get(file_field)
                and existing.files.get(url_field) == url
            )
            if unchanged_url:
                files[file_field] = existing.files[file_field]
                continue
            if self._downloader is None:
                self._downloader = ImageDownloader()
            content, extension = self._downloader.fetch(url)
            folder = f"mirrored/{entity_type}s/{self.connector.organisation_id}"
            name = f"{folder}/{write.mapped.external_id}{extension}"
            files[file_field] = default_storage.save(name, ContentFile(content))
        return files

    # Writes -------------------------------------------------------------------------------

    def commit_page(
        self,
        entity_type: str,
        *,
        writes: list[Write],
        logs: list[LogLine],
        stats: dict,
        cursors: dict,
    ) -> bool:
        """Store one page in one transaction; returns whether a cancel was requested.

        On PostgreSQL, outside a caller's transaction, the page's statement goes to a writer
        thread with a connection of its own (write-behind) and this returns at once: the
        engine decides the next page while PostgreSQL stores this one, where it used to wait
        for it (the wait was most of a cold sync's time). At most one page is in flight: the
        next commit, any read of its records or slugs and every other store call wait for it
        first (_settle), so every decision sees what the previous pages wrote, and a cancel
        its statement saw raises JobCancelled there, before anything else is stored.
        """
        self._settle()
        now = timezone.now()
        postgres = connection.vendor == "postgresql"
        one_statement = not bench_without("pagestatement")
        if postgres and one_statement and self.write_behind and not connection.in_atomic_block:
            # Everything the statement needs is built here, from this page's state: the
            # engine's counters and cursors go on changing while it is written.
            frozen = {key: dict(counters) for key, counters in stats.items()}
            statement = self._page_statement(entity_type, writes, logs, frozen, cursors, now)
            slugs = {w.mapped.values.get("slug") for w in writes} - {None, ""}
            slugs |= {w.existing.slug for w in writes if w.existing and w.existing.slug}
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="sync-writer")
            self._in_flight = _InFlight(
                future=self._writer.submit(self._write_page, entity_type, statement),
                entity_type=entity_type,
                external_ids={w.mapped.external_id for w in writes},
                slugs=slugs,
                moves_slugs=bool(statement.released or statement.moving),
                args=(entity_type, writes, logs, frozen, dict(cursors), now),
                live_stats=stats,
            )
            self.connector.cursors = dict(cursors)
            return False
        if postgres and not bench_without("pagestatement"):
            try:
                return self._commit_in_one_statement(entity_type, writes, logs, stats, cursors, now)
            except REFUSALS as exc:
                # Nothing of the page was written (one statement): take the careful path,
                # which saves row by row so only the culprits fail.
                logger.info("page of %s refused (%s); saving it row by row", entity_type, exc)
        moved = cursors != self.connector.cursors
        return self._commit_row_by_row(entity_type, writes, logs, stats, cursors, now, moved)

    def _write_page(self, entity_type: str, statement: _Statement) -> bool | object:
        """In the writer thread: run a page's statement; its cancel flag, or _REFUSED."""
        try:
            if not self._writer_session_ready:
                with connection.cursor() as cursor:
                    cursor.execute("SET synchronous_commit = off")  # see _commit_in_one_statement
                self._writer_session_ready = True
            return self._run_statement(entity_type, statement)
        except REFUSALS as exc:
            logger.info("page of %s refused (%s); saving it row by row", entity_type, exc)
            return _REFUSED

    def _commit_refused_page(self, flight: _InFlight) -> bool:
        """The database refused a written-behind page (nothing of it was stored): save it
        row by row here, then carry the counters it corrected over to the engine's."""
        entity_type, writes, logs, stats, cursors, now = flight.args
        before = dict(stats[entity_type])
        cancel = self._commit_row_by_row(entity_type, writes, logs, stats, cursors, now, True)
        live = flight.live_stats[entity_type]
        for key, value in stats[entity_type].items():
            live[key] = live.get(key, 0) + value - before.get(key, 0)
        return cancel

    def _commit_row_by_row(
        self,
        entity_type: str,
        writes: list[Write],
        logs: list[LogLine],
        stats: dict,
        cursors: dict,
        now: datetime,
        moved: bool,
    ) -> bool:
        postgres = connection.vendor == "postgresql"
        with transaction.atomic(), connection.cursor() as cursor:
            if postgres:
                cursor.execute("SET LOCAL synchronous_commit = off")
            if writes:
                for write in self._upsert(cursor, entity_type, writes, now):
                    # The database refused a row the engine counted as written.
                    counters = stats[entity_type]
                    counters["created" if write.existing is None else "updated"] -= 1
                    counters["failed"] += 1
            # In the page's transaction (the replaced rows go only with their replacements),
            # and before its own log rows go in, which it would delete too afterwards.
            self._forget_replaced(cursor, logs)
            if logs and postgres:
                self._copy_logs(cursor, logs, now)
            elif logs:
                SyncLogEntry.objects.bulk_create(
                    [self._log_entry(line, now) for line in logs], batch_size=500
                )
            if postgres:
                # Cursors, progress and the cancel flag in one round trip.
                cursor.execute(
                    "WITH moved AS (UPDATE connectors_connector SET cursors = %s "
                    "WHERE id = %s AND %s) "
                    "UPDATE syncjobs_syncjob SET stats = %s, current_entity_type = %s, "
                    "heartbeat_at = %s WHERE id = %s RETURNING cancel_requested_at",
                    [
                        *(Jsonb(cursors), self.connector.pk, moved),
                        *(Jsonb(stats), entity_type, now, self.job.pk),
                    ],
                )
                row = cursor.fetchone()
                self.connector.cursors = dict(cursors)
                return row is not None and row[0] is not None
            if moved:
                Connector.objects.filter(pk=self.connector.pk).update(cursors=cursors)
                self.connector.cursors = dict(cursors)
            jobs = SyncJob.objects.filter(pk=self.job.pk)
            jobs.update(stats=stats, current_entity_type=entity_type, heartbeat_at=now)
            return jobs.filter(cancel_requested_at__isnull=False).exists()

    def _commit_in_one_statement(
        self,
        entity_type: str,
        writes: list[Write],
        logs: list[LogLine],
        stats: dict,
        cursors: dict,
        now: datetime,
    ) -> bool:
        """The page's upsert, its log rows, the cursors and the progress in ONE statement.

        Round trips, not rows, are what a page costs on a busy machine: this is one, where a
        transaction of separate statements was a dozen. A single statement is atomic on its
        own; the log rows take the pk the upsert returned. Raises IntegrityError / DataError
        with nothing written when the database refuses any row.
        """
        if not self._session_ready:
            with connection.cursor() as cursor:
                # Don't wait for the WAL flush of each page: a worker crash loses nothing
                # (the commit is in PostgreSQL already); a PostgreSQL crash may lose the last
                # fraction of a second of pages, consistently (records, log and cursor go
                # together), and the next run re-imports them idempotently. Reset in close().
                cursor.execute("SET synchronous_commit = off")
            self._session_ready = True
        cancel = self._run_statement(
            entity_type, self._page_statement(entity_type, writes, logs, stats, cursors, now)
        )
        self.connector.cursors = dict(cursors)
        return cancel

    def _page_statement(
        self,
        entity_type: str,
        writes: list[Write],
        logs: list[LogLine],
        stats: dict,
        cursors: dict,
        now: datetime,
    ) -> _Statement:
        """The page's one statement and its parameters (see _commit_in_one_statement), with
        the records whose slugs must be let go of first."""
        model = RECORD_MODELS[entity_type]
        parts: list[str] = []
        params: list = []
        if writes:
            parts.append(f"up AS ({self._json_upsert_sql(entity_type)})")
            params += self._bookkeeping(entity_type, now)
            params.append(self._record_document(entity_type, writes, now))
        if logs:
            joined = "LEFT JOIN up ON up.external_id = l.external_id" if writes else ""
            internal = "COALESCE(up.id, l.internal_id)" if writes else "l.internal_id"
            # The log's foreign keys are not database constraints (a check per row, see
            # SyncLogEntry.job): the job row gives both values, read once for the page, and
            # no job row means no log rows. (Not FOR KEY SHARE: the statement's own UPDATE of
            # that row, below, would hide it from the lock; that UPDATE is what holds off a
            # concurrent delete of the job until the page has committed.)
            parts.append("jb AS (SELECT id, connector_id FROM syncjobs_syncjob WHERE id = %s)")
            parts.append(  # constant SQL fragments only; every value is in the parameters
                "lg AS (INSERT INTO syncjobs_synclogentry (job_id, connector_id, entity_type, "  # noqa: S608
                "external_id, internal_id, operation, status, error, processed_at) "
                f"SELECT jb.id, jb.connector_id, l.entity_type, l.external_id, {internal}, "
                "l.operation, l.status, l.error, %s FROM jb CROSS JOIN ROWS FROM "
                "(json_to_recordset(%s::json) AS (entity_type text, external_id text, "
                "internal_id uuid, operation text, status text, error text)) WITH ORDINALITY "
                "AS l(entity_type, external_id, internal_id, operation, status, error, n) "
                f"{joined} "
                "ORDER BY l.n)"  # ids in processing order, whatever the join did
            )
            params += [self.job.pk, now]
            params.append(
                _json_document(
                    [
                        {
                            "entity_type": line.entity_type,
                            "external_id": line.external_id[:64],
                            "internal_id": line.internal_id,
                            "operation": line.operation,
                            "status": line.status,
                            "error": line.error,
                        }
                        for line in logs
                    ]
                )
            )
            replaced = [line for line in logs if line.replaces]
            if replaced:
                # The rows these lines replace go in the same statement, so with them: every
                # sub-statement sees the snapshot from before it, so this cannot delete the
                # rows `lg` inserts, and a refused or failed page deletes nothing.
                parts.append(f"gone AS ({REPLACED_LOGS_SQL})")
                params += _replaced_params(self.job.pk, replaced)
        moved = cursors != self.connector.cursors
        cursors = dict(cursors)  # as of this page: the engine's dict moves on
        parts.append("moved AS (UPDATE connectors_connector SET cursors = %s WHERE id = %s AND %s)")
        params += [Jsonb(cursors), self.connector.pk, moved]
        sql = (
            "WITH "  # noqa: S608
            + ", ".join(parts)
            + " UPDATE syncjobs_syncjob SET stats = %s, current_entity_type = %s, "
            "heartbeat_at = %s WHERE id = %s RETURNING cancel_requested_at"
        )
        params += [Jsonb(stats), entity_type, now, self.job.pk]
        released = [pk for write in writes for pk in write.release_pks]
        return _Statement(sql, params, released, self._moving_slugs(model, writes))

    def _run_statement(self, entity_type: str, statement: _Statement) -> bool:
        """Runs a page's statement on this thread's connection; returns the cancel flag."""
        model = RECORD_MODELS[entity_type]
        released, moving = statement.released, statement.moving
        # Slugs let go of first (rare) need statements before the upsert, hence a transaction;
        # inside a caller's transaction (tests) a savepoint keeps a refusal recoverable.
        needs_block = bool(released or moving) or connection.in_atomic_block
        with transaction.atomic() if needs_block else nullcontext():
            if released:
                model.objects.filter(pk__in=released, archived_at__isnull=False).update(slug="")
            if moving:
                model.objects.filter(pk__in=moving).update(slug="")
            with _bound_cursor() as cursor:
                cursor.execute(statement.sql, statement.params)
                row = cursor.fetchone()
        return row is not None and row[0] is not None

    def _json_upsert_sql(self, entity_type: str) -> str:
        """The page's upsert, its rows read from ONE json parameter (_record_document)."""
        cached = self._sql_cache.get(("json", entity_type))
        if cached:
            return cached
        model = RECORD_MODELS[entity_type]
        fields = list(model._meta.concrete_fields)
        qn = connection.ops.quote_name
        updated = self._updated_fields(entity_type)
        columns = ", ".join(qn(f.column) for f in fields)
        # New records come with a null id: PostgreSQL makes their uuid (RETURNING hands it
        # back for the log rows), which is cheaper than uuid4() and its text in Python.
        # The bookkeeping columns are the same for every row of the page: parameters of the
        # statement (in this order, see _page_statement), not keys of each row's json.
        selected = ", ".join(
            f"COALESCE(r.{qn(f.column)}, gen_random_uuid())"
            if f.primary_key
            else f"%s::{f.db_type(connection)}"
            if f.column in self._BOOKKEEPING
            else f"r.{qn(f.column)}"
            for f in fields
        )
        # Identifiers and types come from model metadata (quoted); values only travel in the
        # json document. A value too long for its column is refused (DataError), not cut.
        definitions = ", ".join(
            f"{qn(f.column)} {f.db_type(connection)}"
            for f in fields
            if f.column not in self._BOOKKEEPING
        )
        assignments = ", ".join(
            f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in fields if f.name in updated
        )
        sql = (
            f"INSERT INTO {qn(model._meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT {selected} FROM json_to_recordset(%s::json) AS r({definitions}) "
            f"ON CONFLICT (connector_id, external_id) DO UPDATE SET {assignments} "
            "RETURNING id, external_id"
        )
        self._sql_cache[("json", entity_type)] = sql
        return sql

    def _record_document(self, entity_type: str, writes: list[Write], now: datetime) -> str:
        """The page's records as one json array for json_to_recordset(), every column in
        each object (a missing key would be NULL, not the field's default).

        A row is its own bookkeeping (id, hash, times), the defaults of the columns nothing
        fills, then the record's mapped values as the canonical JSON its content hash was
        computed from (MappedRecord.payload, encoded once, by the mapping): what is hashed is,
        byte for byte, what is stored. The columns every row shares are statement parameters
        (_bookkeeping), not repeated in each row.
        """
        rows = []
        for write in writes:
            ex, mapped = write.existing, write.mapped
            head = {
                "id": ex.pk if ex is not None else None,
                "external_id": mapped.external_id,
                "content_hash": write.hash,
                "source_modified_at": mapped.modified_gmt,
                "platform_modified_at": None
                if (ex is None or write.clear_platform_edit)
                else ex.platform_modified_at,
                **write.files,
            }
            fresh = mapped.payload and mapped.digest == write.hash
            payload = mapped.payload if fresh else content_payload(mapped.values)
            defaults = self._defaults_fragment(entity_type, tuple(mapped.values), tuple(head))
            parts = [_json_document(head)[1:-1], defaults, payload[1:-1]]
            rows.append("{" + ",".join(part for part in parts if part) + "}")
        return "[" + ",".join(rows) + "]"

    def _defaults_fragment(self, entity_type: str, mapped: tuple, head: tuple) -> str:
        """`"column":default, …` for the columns that neither the bookkeeping nor the mapped
        values fill (files when not mirrored): a few shapes per sync, each encoded once."""
        key = (entity_type, mapped, head)
        cached = self._sql_cache.get(key)
        if cached is None:
            filled = set(mapped) | set(head) | self._BOOKKEEPING
            model = RECORD_MODELS[entity_type]
            cached = _json_document(
                {
                    f.column: f.get_default()
                    for f in model._meta.concrete_fields
                    if f.column not in filled and f.name not in filled
                }
            )[1:-1]
            self._sql_cache[key] = cached
        return cached

    def _shared_columns(self, now: datetime) -> dict:
        """The columns every record a page writes shares (_BOOKKEEPING), by column name."""
        return {
            "organisation_id": self.connector.organisation_id,
            "connector_id": self.connector.pk,
            "last_synced_at": now,
            "archived_at": None,
            "created_at": now,
            "updated_at": now,
        }

    def _bookkeeping(self, entity_type: str, now: datetime) -> list:
        """The shared columns' values, in the order of the record model's columns."""
        values = self._shared_columns(now)
        fields = RECORD_MODELS[entity_type]._meta.concrete_fields
        return [values[f.column] for f in fields if f.column in self._BOOKKEEPING]

    _BOOKKEEPING = frozenset(
        {
            "organisation_id",
            "connector_id",
            "last_synced_at",
            "archived_at",
            "created_at",
            "updated_at",
        }
    )

    @staticmethod
    def _moving_slugs(model, writes: list[Write]) -> list:
        """Records of this page that change slug: they let go of the old one first, as the
        unique index is checked row by row inside one statement and two posts swapping slugs
        in WordPress would otherwise collide with each other's old value."""
        if not model.has_slug:
            return []
        return [
            write.existing.pk
            for write in writes
            if write.existing is not None
            and write.existing.slug
            and write.existing.slug != write.mapped.values.get("slug", write.existing.slug)
        ]

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

    def _copy_logs(self, cursor, logs: list[LogLine], now: datetime) -> None:
        # COPY: the log is the biggest write of a sync (one row per record), and it never
        # conflicts, so it skips INSERT parsing and per-row overhead altogether.
        with cursor.cursor.copy(
            "COPY syncjobs_synclogentry (job_id, connector_id, entity_type, external_id, "
            "internal_id, operation, status, error, processed_at) FROM STDIN"
        ) as copy:
            for line in logs:
                copy.write_row(
                    (
                        self.job.pk,
                        self.connector.pk,
                        line.entity_type,
                        line.external_id[:64],
                        line.internal_id,
                        line.operation,
                        line.status,
                        line.error,
                        now,
                    )
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

    def _upsert_sql(self, entity_type: str) -> tuple[str, str, str, list]:
        cached = self._sql_cache.get(entity_type)
        if cached:
            return cached
        model = RECORD_MODELS[entity_type]
        fields = list(model._meta.concrete_fields)
        qn = connection.ops.quote_name
        updated = self._updated_fields(entity_type)
        # Identifiers come from model metadata (quoted); values only ever travel through COPY.
        table = qn(model._meta.db_table)
        stage = qn(f"sync_stage_{model._meta.db_table}")
        columns = ", ".join(qn(f.column) for f in fields)
        assignments = ", ".join(
            f"{qn(f.column)} = EXCLUDED.{qn(f.column)}" for f in fields if f.name in updated
        )
        copy_sql = f"COPY {stage} ({columns}) FROM STDIN"
        upsert_sql = (
            f"WITH staged AS (DELETE FROM {stage} RETURNING *) "  # noqa: S608
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM staged "
            f"ON CONFLICT (connector_id, external_id) DO UPDATE SET {assignments} "
            "RETURNING id, external_id"
        )
        self._sql_cache[entity_type] = (stage, copy_sql, upsert_sql, fields)
        return self._sql_cache[entity_type]

    def _params(self, fields, rows: list[dict]) -> list:
        params = []
        for row in rows:
            for f in fields:
                value = row[f.attname] if f.attname in row else row.get(f.name, _ABSENT)
                if value is _ABSENT:
                    value = f.get_default()
                if isinstance(f, JSONField):
                    value = Jsonb(value)
                params.append(value)
        return params

    def _upsert_rows(self, cursor, entity_type: str, rows: list[dict]) -> dict[str, Any]:
        """One statement for all rows; returns {external_id: pk}."""
        if connection.vendor == "postgresql":
            stage, copy_sql, upsert_sql, fields = self._upsert_sql(entity_type)
            # COPY into a session temp table, then one INSERT … SELECT … ON CONFLICT that
            # also empties it: several times faster than a VALUES list of ~2,000 parameters.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                f"(LIKE {connection.ops.quote_name(RECORD_MODELS[entity_type]._meta.db_table)}) "
                "ON COMMIT DELETE ROWS"
            )
            params = self._params(fields, rows)
            width = len(fields)
            with cursor.cursor.copy(copy_sql) as copy:
                for start in range(0, len(params), width):
                    copy.write_row(params[start : start + width])
            cursor.execute(upsert_sql)
            return {external_id: pk for pk, external_id in cursor.fetchall()}
        # Other databases (the demo's SQLite): the ORM's portable upsert. Existing rows keep
        # the pk they were loaded with, new ones the uuid generated here.
        model = RECORD_MODELS[entity_type]
        names = {f.attname for f in model._meta.concrete_fields}
        model.objects.bulk_create(
            [model(**{k: v for k, v in row.items() if k in names}) for row in rows],
            update_conflicts=True,
            unique_fields=["connector", "external_id"],
            update_fields=sorted(self._updated_fields(entity_type)),
        )
        return {row["external_id"]: row["id"] for row in rows}

    def _updated_fields(self, entity_type: str) -> set[str]:
        updated = {spec.name for spec in MAPPINGS[entity_type]} | {
            "content_hash",
            "source_modified_at",
            "last_synced_at",
            "archived_at",
            "platform_modified_at",
            "updated_at",
        }
        return updated | {name for _, name in self._file_fields(entity_type)}

    def _upsert(self, cursor, entity_type: str, writes: list[Write], now: datetime) -> list[Write]:
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
                pks = self._upsert_rows(cursor, entity_type, rows)
        except REFUSALS as exc:
            # A constraint the pre-checks could not foresee (a concurrent writer took the
            # slug): save one by one so only the culprits fail.
            logger.info("bulk upsert of %s page failed (%s); retrying row by row", entity_type, exc)
            for write, row in zip(writes, rows, strict=True):
                try:
                    with transaction.atomic():
                        pks.update(self._upsert_rows(cursor, entity_type, [row]))
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

    # Archiving ----------------------------------------------------------------------------

    def archive_unseen(
        self, entity_type: str, after: Any, limit: int
    ) -> tuple[list[tuple[str, Any]], Any]:
        """Archive the connector's live records (one batch, in external id order after
        `after`) that have no log row in this job; returns (archived, where to continue or
        None when done).

        Index-driven queries per batch, whatever the table statistics (see _probe): an
        anti-join against a log that was just written can be planned as a nested loop over it.
        """
        doomed, after = self._unseen(entity_type, after, limit)
        if doomed:
            RECORD_MODELS[entity_type].objects.filter(
                pk__in=[pk for _, pk in doomed], archived_at__isnull=True
            ).update(archived_at=timezone.now())
        return doomed, after

    def unseen(self, entity_type: str, after: Any, limit: int):
        """One batch of the archive walk, archiving nothing: (external_id, pk) of the live
        records without a log row in this job, and where to continue (the deletion guard)."""
        return self._unseen(entity_type, after, limit)

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

    def _unseen(self, entity_type: str, after: Any, limit: int):
        """One batch of the walk archive_unseen does, without archiving (a preview's too)."""
        model = RECORD_MODELS[entity_type]
        postgres = connection.vendor == "postgresql" and not bench_without("steering")
        if postgres:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(self.ARCHIVE_WALK_PLANNING)
                cursor.execute(*self.archive_walk_sql(model, after or "", limit))
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
        if connection.vendor != "postgresql" or bench_without("steering"):
            rows = SyncLogEntry.objects.filter(
                job_id=self.job.pk, entity_type=entity_type, external_id__in=external_ids
            ).values_list("external_id", "operation", "status")
        else:
            # One probe of the (job, external_id) index per record, whatever the log's
            # statistics say (see probe_sql); `entity_type || ''` keeps the planner off the
            # (job, entity_type) index, which would read the whole phase's log every time,
            # and OFFSET 0 keeps the LATERAL subquery a subquery: flattened into a join, it
            # became a scan of the job's whole log per batch (30 ms at 100,000 rows).
            with connection.cursor() as cursor:
                cursor.execute(LOGGED_SQL, [list(external_ids), self.job.pk, entity_type])
                rows = cursor.fetchall()
        found: dict[str, list[tuple[str, str]]] = {}
        for external_id, operation, status in rows:
            found.setdefault(external_id, []).append((operation, status))
        return found

    # The walk must be an ordered scan of the unique index that stops after `limit` rows.
    # With statistics that underestimate the connector's records (a cold import is never
    # analysed), the planner chose a bitmap scan or a table scan, then a sort, which reads
    # every remaining record for each batch: quadratic, 30-40 ms a batch at 100,000
    # records. Set for the walk's own transaction only.
    ARCHIVE_WALK_PLANNING = (
        "SELECT set_config('enable_bitmapscan', 'off', true), "
        "set_config('enable_sort', 'off', true)"
    )

    def archive_walk_sql(self, model, after: str, limit: int) -> tuple[str, list]:
        """A keyset walk of the unique (connector, external_id) index over live records; the
        row comparison keeps it on that index whatever the statistics (see probe_sql), run
        after ARCHIVE_WALK_PLANNING."""
        table = connection.ops.quote_name(model._meta.db_table)
        return (
            f"SELECT id, external_id FROM {table} "  # noqa: S608
            "WHERE connector_id = (SELECT %s::bigint) "
            "AND (connector_id, external_id) > ((SELECT %s::bigint), %s) "
            "AND archived_at IS NULL ORDER BY connector_id, external_id LIMIT %s",
            [self.connector.pk, self.connector.pk, after, limit],
        )

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


# Store methods that decide for themselves whether to wait for the page in flight (reads
# that only depend on it when it wrote the same records or slugs), or that do not touch the
# database (mirror downloads files).
_SETTLE_THEMSELVES = frozenset(
    {"existing", "slug_holders", "commit_page", "flush", "close", "mirror"}
)


def _settling(method):
    @functools.wraps(method)
    def settled_first(self, *args, **kwargs):
        self._settle()
        return method(self, *args, **kwargs)

    return settled_first


# Every other public method waits for the page being written first, whatever it reads or
# writes (the job's log, archiving, pushes…): wrapped here rather than by hand in each, so a
# store method added later cannot forget it and read around a page still in flight.
for _name, _method in list(vars(DjangoStore).items()):
    if (
        inspect.isfunction(_method)
        and not _name.startswith("_")
        and _name not in (_SETTLE_THEMSELVES)
    ):
        setattr(DjangoStore, _name, _settling(_method))


# This job's log rows of some records of one type (DjangoStore._log_rows). Parameters: the
# external ids (a list), the job's id, the entity type.
LOGGED_SQL = (
    "SELECT k.v, seen.operation, seen.status FROM unnest(%s::text[]) AS k(v) "
    "CROSS JOIN (SELECT %s::bigint AS id) AS j CROSS JOIN LATERAL (SELECT "
    "l.operation, l.status FROM syncjobs_synclogentry l "
    "WHERE l.job_id = j.id AND l.external_id = k.v "
    "AND (l.job_id, l.external_id) >= (j.id, k.v) "
    "AND l.entity_type || '' = %s OFFSET 0) AS seen"
)

# Deletes this job's log rows of the records that (entity_type, external_id) pairs name: one
# probe of the (job, external_id) index per record, whatever the log's statistics (see
# DjangoStore._log_rows). Parameters: _replaced_params().
REPLACED_LOGS_SQL = (
    "DELETE FROM syncjobs_synclogentry AS d USING (SELECT seen.id FROM "
    "unnest(%s::text[], %s::text[]) AS k(t, v) CROSS JOIN (SELECT %s::bigint AS id) AS j "
    "CROSS JOIN LATERAL (SELECT l.id FROM syncjobs_synclogentry l "
    "WHERE l.job_id = j.id AND l.external_id = k.v "
    "AND (l.job_id, l.external_id) >= (j.id, k.v) AND l.entity_type || '' = k.t OFFSET 0) "
    "AS seen) "
    "AS old WHERE d.id = old.id"
)


def _replaced_params(job_id: Any, lines: list[LogLine]) -> list:
    return [
        [line.entity_type for line in lines],
        [line.external_id[:64] for line in lines],  # as its row stored it
        job_id,
    ]


def _json_value(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()  # with its offset: timestamptz reads it as that instant
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a sync page")


def _json_document(value: Any) -> str:
    """JSON for the page statement, which unpacks it with json_to_recordset.

    Not a typed array per column: psycopg adapts arrays element by element in Python, which
    was a third of the worker's CPU in a cold sync; orjson is C and needs no callback for
    dates and uuids. PostgreSQL parses the text once and converts each value with its
    column's input function, so a value it cannot store (a NUL character, a string too
    long) is refused as a DataError, exactly like a parameter, and the page takes the
    row-by-row path.
    """
    try:
        return orjson.dumps(value).decode()  # UUIDs and dates natively, without callbacks
    except TypeError:  # an integer beyond 64 bits: PostgreSQL refuses it either way
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_value)


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


def _bound_cursor() -> psycopg.Cursor:
    """A cursor on Django's connection that binds parameters on the server.

    Django's psycopg cursors bind on the client: every value, a page's HTML included, is
    quoted into the SQL text in Python and parsed back by PostgreSQL. For the engine's
    statements (a page as arrays) server-side binding sends the values as they are, which
    takes a large share of a sync's CPU off both sides. Errors are psycopg's own classes.
    """
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


class ImageDownloader:
    """Downloads files to mirror through the SSRF guard, size- and type-checked."""

    def __init__(self, *, max_bytes: int | None = None, timeout: float = 20.0):
        self.guard = OutboundGuard(allow_private=settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
        self.client = httpx.Client(
            transport=GuardedTransport(self.guard),
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,
            headers={"User-Agent": "AssociationPlatform/1.0 (image mirror)"},
        )
        self.max_bytes = max_bytes or getattr(settings, "SYNC_MIRROR_MAX_BYTES", MIRROR_MAX_BYTES)

    def fetch(self, url: str) -> tuple[bytes, str]:
        prefix = f"the image {url[:300]} could not be downloaded: "
        current = url
        try:
            for _hop in range(4):
                self.guard.check_url(current)
                with self.client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise MirrorFailed(
                            prefix + f"the site answered HTTP {response.status_code}."
                        )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise MirrorFailed(prefix + self._too_big(int(declared)))
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise MirrorFailed(prefix + self._too_big(len(body)))
                    content_type = response.headers.get("content-type", "").split(";")[0].strip()
                    return bytes(body), self._check_type(prefix, bytes(body), content_type, current)
            raise MirrorFailed(prefix + "too many redirects.")
        except WordPressError as exc:
            raise MirrorFailed(prefix + exc.message) from None
        except httpx.HTTPError as exc:
            raise MirrorFailed(prefix + f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            # httpx decodes a redirect's Location even when not following it: a host that is
            # not valid IDNA (xn--localhost-) fails that one record, never the whole sync.
            raise MirrorFailed(
                prefix + f"the site redirected it to an invalid URL ({exc})."
            ) from None

    def _too_big(self, size: int) -> str:
        return f"it is larger than the limit of {self.max_bytes:,} bytes ({size:,} bytes or more)."

    def _check_type(self, prefix: str, body: bytes, content_type: str, url: str) -> str:
        for mime, signatures in IMAGE_SIGNATURES.items():
            if any(body.startswith(sig) for sig in signatures):
                if mime == "image/webp" and body[8:12] != b"WEBP":
                    continue
                return mimetypes.guess_extension(mime) or ".img"
        shown = content_type or "no content type"
        name = posixpath.basename(urlsplit(url).path) or url
        raise MirrorFailed(prefix + f"{name} is not a PNG, JPEG, GIF or WebP image ({shown}).")
