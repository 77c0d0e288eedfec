"""The engine's store on the Django ORM: reads what the platform holds; its parts write it.

Every method is a fixed number of queries for a whole page, never one per record: one query
loads the page's existing records by external id, one checks its slugs (each value its own
index probe, whatever the statistics: probe_sql), and one statement
writes the page (syncjobs.engine.page_writes), in the writer thread while the engine reads
the next page (commit_page's `behind`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Q

from connectors.models import Connector
from connectors.wordpress.media import MIRRORED_FILES, FileMirror
from records.mapping import MAPPINGS
from records.models import RECORD_MODELS
from syncjobs.engine.archive_walk import ArchiveWalk
from syncjobs.engine.page_writes import PageWriter, PageWrites, bound_rows
from syncjobs.engine.plan import Existing, PageCommit, SlugHolder, Write
from syncjobs.engine.row_writes import RowWrites
from syncjobs.models import SyncJob


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


def _existing_columns(model, file_fields) -> list[str]:
    """The columns _existing() reads."""
    columns = ["id", "external_id", "content_hash", "source_modified_at", "platform_modified_at"]
    columns += ["push_refused_at", "archived_at"] + (["slug"] if model.has_slug else [])
    return columns + [name for pair in file_fields for name in pair]


@functools.cache
def probe_sql(model, columns: tuple[str, ...], scope: str, key: str) -> str:
    """DjangoStore._probe's statement; parameters: the values (a list), then the scope's id."""
    qn, field = connection.ops.quote_name, model._meta.get_field
    names = [qn(field(name).column) for name in columns]
    scope_column, key_column = qn(field(scope).column), qn(field(key).column)
    # The slug index is partial (slugs not empty): its predicate, so it can serve.
    extra = f" AND {key_column} <> ''" if key == "slug" else ""
    return (
        f"SELECT {', '.join(f'r.{n}' for n in names)} FROM unnest(%s::text[]) AS k(v) "  # noqa: S608
        "CROSS JOIN (SELECT %s::bigint AS id OFFSET 0) AS s CROSS JOIN LATERAL "
        f"(SELECT {', '.join(names)} FROM {qn(model._meta.db_table)} "
        f"WHERE {scope_column} = s.id AND {key_column} = k.v "
        f"AND ({scope_column}, {key_column}) >= (s.id, k.v){extra} LIMIT 1) AS r"
    )


class DjangoStore(PageWrites, RowWrites, ArchiveWalk):
    def __init__(self, job: SyncJob, connector: Connector):
        self.job = job
        self.connector = connector
        self.mirror_enabled = connector.mirror_images
        self.files = FileMirror(connector.organisation_id)
        self._sql_cache: dict = {}
        self._sessions = threading.local()  # which threads' connections are set up
        self._growth: dict[str, tuple] = {}  # table: (rows its statistics count, rows added)
        self.write_behind: bool = settings.SYNC_WRITE_BEHIND
        self._writer: PageWriter | None = None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.files.close()
        if getattr(self._sessions, "ready", False):
            # The connection outlives the job (a worker runs many): leave it as it was.
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")

    # Writes: page_writes.PageWrites, here whether a page is stored behind ----------------

    def commit_page(self, page: PageCommit) -> bool:
        """Store one page in one transaction; returns whether a cancel was requested.

        `page.behind`: the caller reads its next page's records and slugs meanwhile (existing,
        slug_holders: they do not see this page, and the engine reads again what it wrote,
        SyncEngine._page_reads) and calls settle() before any other call. On PostgreSQL,
        outside a caller's transaction, the page's statement then runs in the writer thread
        (PageWriter) and this returns False at once; settle() returns the page's cancel flag,
        or raises what storing it raised. A page in flight is settled before the next one.
        """
        if self.settle():
            return True
        if (
            page.behind
            and self.write_behind
            and connection.vendor == "postgresql"
            and not connection.in_atomic_block  # a thread's connection would not see it
        ):
            if self._writer is None:
                self._writer = PageWriter()
            # `stats` is the engine's: its row-by-row path corrects counters in it, and the
            # engine leaves it alone until settle(). The cursors move on with the next page.
            self._writer.submit(
                partial(PageWrites.commit_page, self, replace(page, cursors=dict(page.cursors)))
            )
            return False
        return super().commit_page(page)

    def settle(self) -> bool:
        """Wait for the page in the writer thread, if any; returns whether its statement saw
        a cancel request. Raises what storing it raised."""
        return self._writer.settle() if self._writer is not None else False

    # Reads --------------------------------------------------------------------------------

    def existing(self, entity_type: str, external_ids: list[str]) -> dict[str, Existing]:
        model = RECORD_MODELS[entity_type]
        file_fields = self._file_fields(entity_type)
        columns = [*_existing_columns(model, file_fields), "last_synced_at"]
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

    def _probe(
        self, model, columns: list[str], scope: str, scope_id: Any, key: str, values: list[str]
    ) -> list[dict]:
        """Rows of `model` WHERE scope = scope_id AND key = one of `values`: one probe of the
        unique (scope, key) index per value, whatever the table's statistics say.

        Not `scope = 7 AND key = ANY(…)`: during a cold import the statistics are stale
        (never analysed, or analysed when the table held only other connectors' records),
        the planner takes "connector 7" for a dozen rows and reads *every* record of the
        connector through the index's first column, then filters, for each page: the page
        lookup grew with the table, 9 ms a page at 30,000 records, and a 100,000-record sync
        spent a third of its time there (measured with BENCH_COMPARE, README "What the
        engine keeps"). Here each value is a LATERAL lookup whose condition
        repeats the equalities as the row comparison `(scope, key) >= (id, v)`, which only
        an index on exactly (scope, key) can serve (tests/engine/test_store.py).
        """
        if connection.vendor != "postgresql":
            lookup = {scope: scope_id, f"{key}__in": values}
            return list(model.objects.filter(**lookup).values(*columns))
        rows = bound_rows(probe_sql(model, tuple(columns), scope, key), [list(values), scope_id])
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def slug_holders(self, entity_type: str, slugs: list[str]) -> dict[str, SlugHolder]:
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
        columns = _existing_columns(model, file_fields) + names
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
        in its page's own statement (LogLine.replaces, REPLACED_LOGS_SQL)."""
        return self._log_rows(entity_type, external_ids)

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
        return self.files.files(entity_type, write, self._file_fields(entity_type))
