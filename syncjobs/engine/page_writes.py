"""Writing a sync's page on PostgreSQL in ONE statement: records, log rows, cursors, progress.

Every page is one transaction, so a crash keeps every page committed before it and a re-run
upserts on the same (connector, external_id) keys: no duplicates. The statement carries the
upsert (INSERT … ON CONFLICT (connector, external_id) DO UPDATE), its log rows, the cursors
and the job's progress, returning the cancel flag; the page's rows travel as one JSON document
(json_to_recordset). When the database refuses a row, the page is saved again row by row
(savepoints) through the ORM so only the culprits fail; other databases (the demo's SQLite)
take that careful path always. A job that has doubled a table has it analysed after its page
(_keep_statistics), so the next pages' lookups are planned on what the table holds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
import psycopg
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from records.mapping import MAPPINGS, content_payload
from records.models import RECORD_MODELS
from syncjobs.engine.plan import LogLine, PageCommit, Write
from syncjobs.engine.row_writes import REFUSALS
from syncjobs.models import SyncLogEntry

logger = logging.getLogger(__name__)

# Deletes this job's log rows of the records that (entity_type, external_id) pairs name: one
# probe of the (job, external_id) index per record, whatever the log's statistics (see
# archive_walk.LOGGED_SQL). Parameters: _replaced_params().
REPLACED_LOGS_SQL = (
    "DELETE FROM syncjobs_synclogentry AS d USING (SELECT seen.id FROM "
    "unnest(%s::text[], %s::text[]) AS k(t, v) CROSS JOIN (SELECT %s::bigint AS id) AS j "
    "CROSS JOIN LATERAL (SELECT l.id FROM syncjobs_synclogentry l "
    "WHERE l.job_id = j.id AND l.external_id = k.v "
    "AND (l.job_id, l.external_id) >= (j.id, k.v) AND l.entity_type || '' = k.t OFFSET 0) "
    "AS seen) AS old WHERE d.id = old.id"
)


# See PageWrites._keep_statistics.
ANALYZE_AFTER = 1000
LOG_TABLE = SyncLogEntry._meta.db_table
# The columns the engine's lookups filter on: not the records' HTML, which ANALYZE would read
# out of TOAST for every row it samples.
ANALYZED_RECORD_COLUMNS = "organisation_id, connector_id, external_id, archived_at"
ANALYZED_LOG_COLUMNS = "job_id, connector_id, entity_type, external_id"


@dataclass
class _Statement:
    sql: str
    params: list
    released: list  # archived records whose slug a write takes over
    moving: list  # records of the page that change slug


class PageWrites:
    """DjangoStore's writes (a mixin: the job, the connector and the caches are the store's)."""

    def commit_page(self, page: PageCommit) -> bool:
        """Store one page in one transaction; returns whether a cancel was requested."""
        now = timezone.now()
        if connection.vendor == "postgresql":
            try:
                return self._commit_in_one_statement(page, now)
            except REFUSALS as exc:
                # Nothing of the page was written (one statement): take the careful path,
                # which saves row by row so only the culprits fail.
                logger.info("page of %s refused (%s); saving it row by row", page.entity_type, exc)
        return self._commit_row_by_row(page, now)

    def _commit_in_one_statement(self, page: PageCommit, now: datetime) -> bool:
        """The page's upsert, its log rows, the cursors and the progress in ONE statement.

        Round trips, not rows, are what a page costs on a busy machine: this is one, where a
        transaction of separate statements was a dozen. A single statement is atomic on its
        own; the log rows take the pk the upsert returned. Raises IntegrityError / DataError
        with nothing written when the database refuses any row.
        """
        if not getattr(self._sessions, "ready", False):  # per thread: its own connection
            with connection.cursor() as cursor:
                # Don't wait for the WAL flush of each page: a worker crash loses nothing
                # (the commit is in PostgreSQL already); a PostgreSQL crash may lose the last
                # fraction of a second of pages, consistently (records, log and cursor go
                # together), and the next run re-imports them idempotently. Reset in close()
                # (the writer thread's connection is closed with it).
                cursor.execute("SET synchronous_commit = off")
            self._sessions.ready = True
        statement = self._page_statement(page, now)
        cancel = self._run_statement(page.entity_type, statement)
        self.connector.cursors = dict(page.cursors)
        self._keep_statistics(page)
        return cancel

    def _keep_statistics(self, page: PageCommit) -> None:
        """ANALYZE a table once this job has added as many rows to it as its statistics
        count (and at least ANALYZE_AFTER): PostgreSQL's advice after a bulk load, which a
        cold import is. Planned on statistics of an emptier table, the page lookups became
        table scans (0 rows expected) and the archive walk's log probes too, each page
        slower than the one before; autovacuum comes, but not within a sync (its threshold
        is 10 % of the table, checked once a minute), and may be off."""
        model = RECORD_MODELS[page.entity_type]
        record_columns = ANALYZED_RECORD_COLUMNS + (", slug" if model.has_slug else "")
        for table, columns, added in (
            (model._meta.db_table, record_columns, sum(w.existing is None for w in page.writes)),
            (LOG_TABLE, ANALYZED_LOG_COLUMNS, len(page.logs)),
        ):
            known, grown = self._growth.get(table, (None, 0))
            grown += added
            if grown >= ANALYZE_AFTER and (known is None or grown >= known):
                known, grown = _analyse(table, columns, known, grown)
            self._growth[table] = (known, grown)

    def _page_statement(self, page: PageCommit, now: datetime) -> _Statement:
        """The page's one statement and its parameters (see _commit_in_one_statement), with
        the records whose slugs must be let go of first."""
        entity_type, writes, logs = page.entity_type, page.writes, page.logs
        model = RECORD_MODELS[entity_type]
        parts: list[str] = []
        params: list = []
        if writes:
            parts.append(f"up AS ({self._json_upsert_sql(entity_type)})")
            params += self._bookkeeping(entity_type, now)
            params += [self._record_document(entity_type, writes, now), self.connector.pk]
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
        moved = page.cursors != self.connector.cursors
        cursors = dict(page.cursors)  # as of this page: the engine's dict moves on
        parts.append("moved AS (UPDATE connectors_connector SET cursors = %s WHERE id = %s AND %s)")
        params += [Jsonb(cursors), self.connector.pk, moved]
        sql = (
            "WITH "  # noqa: S608
            + ", ".join(parts)
            + " UPDATE syncjobs_syncjob SET stats = %s, current_entity_type = %s, "
            "heartbeat_at = %s WHERE id = %s RETURNING cancel_requested_at"
        )
        params += [Jsonb(page.stats), entity_type, now, self.job.pk]
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
            # The records' foreign keys are not database constraints (PlatformRecord): once
            # per page, not per row, no record for a connector that is gone.
            "WHERE EXISTS (SELECT FROM connectors_connector WHERE id = %s) "
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


class PageWriter:
    """One thread, with a database connection of its own, that stores a page while the
    engine reads and decides the next one: PostgreSQL works on the statement with the GIL
    released, so the next page's lookups and mapping run meanwhile instead of waiting for
    it. At most one page is in flight; what storing it raised is raised by settle(), at the
    engine's next page."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sync-writer")
        self._flight: Future | None = None

    def submit(self, write) -> None:
        self._flight = self._pool.submit(write)

    def settle(self) -> bool:
        flight, self._flight = self._flight, None
        return bool(flight.result()) if flight is not None else False

    def close(self) -> None:
        """Lets the page in flight finish (a page handed over is stored, as a page committed
        before a failure always was), then closes the thread's connection and the thread."""
        try:
            self.settle()
        except Exception:  # the job is ending on its own error: that is what it reports
            logger.exception("the last page of a sync failed to store")
        self._pool.submit(_close_connection).result()
        self._pool.shutdown()


def _analyse(table: str, columns: str, known: float | None, grown: int) -> tuple:
    """ANALYZE `table` if a job added at least as many rows as its statistics count (read
    once per table and job, when it may matter); returns (rows counted, rows added since)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if known is None:
                cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
                known = max(cursor.fetchone()[0], 0)
            if grown < known:
                return known, grown
            # Not waiting behind a VACUUM of the table (one against wraparound does not give
            # way): the sync matters more than its statistics.
            cursor.execute("SET LOCAL lock_timeout = '1s'")
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)} ({columns})")
        return known + grown, 0
    except DatabaseError:  # not the tables' owner, or the lock not had: the sync goes on
        logger.warning("could not analyse %s", table, exc_info=True)
        return float("inf"), 0


def _close_connection() -> None:
    connection.close()  # this thread's: Django's connections are per thread


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


def bound_rows(sql: str, params: list) -> list[tuple]:
    """The rows of one read on Django's connection, bound on the server and returned in
    binary: the engine's per-page lookups (a page's ids as ONE array parameter, not a
    placeholder per id that the client splits and quotes in Python), and timestamps decoded
    by psycopg's C loader rather than the Python text parser Django installs for them.
    Together those were most of a page lookup's CPU through the ORM.

    Logged like Django's own queries when they are being captured (tests, debug tooling)."""
    started = time.monotonic()
    with _bound_cursor() as cursor:
        cursor.execute(sql, params, binary=True)
        rows = cursor.fetchall()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {params!r}"[:2000], "time": f"{time.monotonic() - started:.3f}"}
        )
    return rows


def _bound_cursor() -> psycopg.Cursor:
    """A cursor on Django's connection that binds parameters on the server.

    Django's psycopg cursors bind on the client: every value, a page's HTML included, is
    quoted into the SQL text in Python and parsed back by PostgreSQL. For the engine's
    statements (a page as arrays) server-side binding sends the values as they are, which
    takes a large share of a sync's CPU off both sides. Errors are psycopg's own classes.
    """
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)
