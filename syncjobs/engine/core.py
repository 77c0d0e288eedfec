"""The sync engine's run: its phases, each type's list pages read, decided and committed one by one.

Pages from a source in, decisions and batched writes to a store out.

No Django, no Celery, no HTTP here: the runner hands it a *source* (the WordPress client, or
anything with the same calls: plan.Source) and a *store* (store.DjangoStore, or the preview's).
The engine decides, per record, CREATE / UPDATE / SKIP / CONFLICT / SYNC / FAILED and, per
phase, what to archive; the store commits each page in one transaction. Memory is bounded by a
page: nothing but counters and cursors is carried across pages.

Phases run in the canonical entity order, enabled types only. An incremental run lists each
type from its high-water mark (the site's own `modified_gmt`, never the worker's clock, and
never past the site's clock: a scheduled post is dated ahead) minus the contract's overlap,
then fetches by id what the change log named and the pages did not bring (contract 1.2, §5.7;
README, "An incremental sync misses no change"). A full run reads every record and archives
what the site no longer serves. Deletions come inline with each type's first page (§5.6), so a
no-change incremental is one request per type; only a 1.0 plugin's types, or capped lists,
read the deletions feed after the phases. Two-way incrementals also push the platform-only
edits after each type's pages: WordPress never sends those records again. A reconciliation
(RECONCILE) is an incremental catch-up, then a full walk whose creates, updates and archives
are drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connectors.wordpress import contract
from records.mapping import MappedRecord, map_page
from syncjobs.engine.changes import RecordsById
from syncjobs.engine.decisions import Decisions
from syncjobs.engine.deletions import Deletions
from syncjobs.engine.plan import (
    CLOCK_TOLERANCE,
    FULL,
    INCREMENTAL,
    INITIAL,
    NO_DELETIONS_YET,
    OVERLAP,
    RECONCILE,
    SKIP,
    SKIPPED,
    JobCancelled,
    LogLine,
    PageCommit,
    Plan,
    Source,
    Store,
    Write,
    fresh_counters,
    parse_cursor,
    record_label,
    when,
)
from syncjobs.engine.pushes import Pushes

if TYPE_CHECKING:
    from connectors.wordpress.pages import Page


class Prefetched:
    """Iterates `pages` one page ahead, in a thread, each page passed through `then` there:
    the site prepares and sends page n+1, and the thread maps it, while the engine decides
    and writes page n, instead of each waiting for the other.

    At most one page is fetched ahead (memory stays bounded by two pages). Whatever the
    source raises (its typed errors, or a KeyboardInterrupt) is re-raised in the consumer at
    the page where it happened. close() drops a page fetched ahead, never processed, so a
    cancelled job stores nothing after the page in progress, and closes the source in the
    thread once its request in flight has ended.
    """

    def __init__(self, pages: Iterator, then: Callable = lambda page: page):
        self._pages, self._then = pages, then
        # The thread waits for work on its queue, woken by the next request or by close(),
        # never on a timer (a poll held every cancelled or failed job's end).
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sync-prefetch")
        self._next = self._thread.submit(self._fetch)

    def _fetch(self):
        page = next(self._pages, None)
        return None if page is None else self._then(page)

    def __iter__(self):
        return self

    def __next__(self):
        page = self._next.result()  # raises what fetching it raised
        if page is None:
            raise StopIteration
        self._next = self._thread.submit(self._fetch)  # while this one is processed
        return page

    def close(self) -> bool:
        """Ends the thread; returns whether it has. A request in flight finishes (or times
        out) on its own: the job is not held for it beyond 10 s."""
        self._next.cancel()
        closed = self._thread.submit(getattr(self._pages, "close", lambda: None))
        self._thread.shutdown(wait=False)
        try:
            closed.result(timeout=10)
        except TimeoutError:
            return False
        return True


class SyncEngine(RecordsById, Decisions, Pushes, Deletions):
    def __init__(self, source: Source, store: Store, plan: Plan):
        self.source = source
        self.store = store
        self.plan = plan
        self.cursors = dict(plan.cursors or {})
        self.stats = {entity_type: fresh_counters() for entity_type in plan.entity_types}
        # Types whose deletions this run must read from the feed (see _inline_deletions).
        self.feed_types: set[str] = set()
        # (pk, platform_modified_at) of this page's pushes WordPress refused for good; stored
        # with the page's log rows (see _commit).
        self.refused: list[tuple[Any, datetime]] = []
        # A reconciliation's walk, after its catch-up sync logged some records in this job.
        self.caught_up = False
        # Contract 1.2 (§5.7): the site's clock as its last list answer gave it, the first
        # page's changed ids its pages have not brought yet, and records dated far ahead.
        self.site_now: datetime | None = None
        self.unseen_changed: set[str] = set()
        self.ahead: list[tuple[str, datetime]] = []
        # Archives held back by the deletion guard, per type (see _guarded).
        self.held: dict[str, int] = {}
        # The ids and slugs of the page being stored behind (see _page_reads).
        self._behind: tuple[set, set] = (set(), set())

    @property
    def full(self) -> bool:
        return self.plan.kind in (FULL, INITIAL, RECONCILE)

    @property
    def reconciling(self) -> bool:
        return self.plan.kind == RECONCILE

    def run(self) -> dict:
        """Run every phase; returns the stats. Raises JobCancelled or the source's errors.

        A reconciliation first runs an incremental sync (not counted): what changed in
        WordPress since the last incremental is not drift, that sync would have read it. The
        full walk after it compares every record served with the platform (a SKIP when equal)
        and counts what it has to create, update or archive: the job's counters are the
        walk's, and those three are its drift (SyncJob.drift)."""
        if self.reconciling and not self.caught_up:
            catch_up = SyncEngine(self.source, self.store, replace(self.plan, kind=INCREMENTAL))
            catch_up.run()
            self.cursors = dict(catch_up.cursors)
            self.caught_up = True
        for entity_type in self.plan.entity_types:
            self._entity_phase(entity_type)
        # Full syncs follow deletions too (inline, else the feed): it moves the deletions
        # cursors, so the next incremental reads only new entries.
        self._deletions_phase()
        return self.stats

    def _entity_phase(self, entity_type: str) -> None:
        modified_after = None
        mark = parse_cursor(self.cursors.get(entity_type))
        if not self.full:
            modified_after = mark - OVERLAP if mark else None
        else:
            # A full listing sets the position anew: one an earlier version let pass the
            # site's clock (a scheduled post's date) comes back to what the site served.
            self.cursors.pop(entity_type, None)
        # Publish the phase before the first request so the progress shows where we are.
        self._commit(entity_type, [], [])
        changes_after = None if self.full else self._changes_cursor(entity_type)
        first = self._read_pages(
            entity_type,
            modified_after,
            deleted_since=self._deleted_since(entity_type) or NO_DELETIONS_YET,
            # A type without a position in the change log yet reads every retained entry.
            changes_after=None if self.full else (changes_after or 0),
        )
        inline = (first.deleted, first.deleted_more) if first else (None, False)
        logged = first is not None and first.change_seq is not None  # a contract 1.2 site
        if logged and not self.full and self._must_reread(entity_type, first, mark, changes_after):
            # Re-read the whole type (idempotent: what did not change is a SKIP), once more
            # logging each record once: the first answer's pages were logged already.
            self._read_pages(entity_type, None, again=True)
            self._move_changes_cursor(entity_type, first.change_seq)
        elif logged and not self.full and first.changed is not None:
            self._changed_records(entity_type, first)
        elif logged:
            # The pages read everything the log held at the first page.
            self._move_changes_cursor(entity_type, first.change_seq)
        if self.full:
            self._archive_unseen(entity_type)
        # After the pages (a restored record came back in them, newer than its deletion),
        # before the pushes (a deleted record is archived, not pushed in vain).
        self._inline_deletions(entity_type, *inline)
        if not self.full and self.plan.two_way:
            self._push_pending(entity_type)

    def _read_pages(
        self,
        entity_type: str,
        modified_after: datetime | None,
        *,
        deleted_since: datetime | None = None,
        changes_after: int | None = None,
        again: bool = False,
    ) -> Page | None:
        """Reads the type's list pages from `modified_after` and processes their records;
        returns the first page without its records (None if there was none): what it said of
        the type's deletions (contract 1.1) and of the site's clock and change log (1.2).
        `again`: this job has read the type already, its records may be logged."""
        counters = self.stats[entity_type]
        kwargs = {"modified_after": modified_after, "per_page": self.plan.per_page}
        if deleted_since is not None:
            kwargs["deleted_since"] = deleted_since
        if changes_after is not None:
            kwargs["changes_after"] = changes_after
        source_pages = self.source.iter_pages(entity_type, **kwargs)
        specs = self.plan.specs[entity_type]

        def mapped_page(page: Page) -> tuple[Page, list[MappedRecord]]:
            return page, map_page(entity_type, specs, list(page.items or []))

        pages = map(mapped_page, source_pages)
        if self.plan.prefetch and not self.plan.two_way:
            # The thread fetches and maps the next page while this one decides and writes
            # this page: nh3 sanitises without the interpreter lock, on the other core.
            # Two-way pushes go through the same client from this thread: no prefetch then.
            pages = Prefetched(source_pages, mapped_page)
        first: Page | None = None
        try:
            for page, mapped in pages:
                if first is None:
                    counters["total"] = max(counters["total"], page.total)
                    first = replace(page, items=[], skipped=[])
                    self.site_now = first.server_time
                    self.unseen_changed = set(map(str, first.changed or ()))
                else:
                    self.site_now = page.server_time or self.site_now
                if self.unseen_changed:
                    # The change log's first ids this page brought need no second fetch: the
                    # page was read after their entries had settled (§5.7).
                    self.unseen_changed -= {record.external_id for record in mapped}
                # Stored behind only when a next page is likely, to be read meanwhile: a
                # type's last page, and a no-change incremental's few records, are stored at
                # once (they would only cost the writer thread its connection).
                full = len(page.items or []) >= self.plan.per_page
                self._process_page(
                    entity_type, mapped, list(page.skipped), again=again, behind=full
                )
            self._settle()
        finally:
            # The source's iterator, whichever wrapper is around it.
            close = getattr(pages, "close", None) or getattr(source_pages, "close", None)
            if close:
                close()
        self._note_future_records(entity_type)
        return first

    def _note(self, entity_type: str, message: str) -> None:
        """A sync-log line about the site rather than one record (no WordPress id)."""
        self._commit(entity_type, [], [LogLine(entity_type, "", SKIP, SKIPPED, message)])

    def _note_future_records(self, entity_type: str) -> None:
        """One line per phase when records not scheduled are dated more than a day after the
        site's own clock: that clock, or the dates it wrote, are wrong."""
        ahead, self.ahead = self.ahead, []
        if not ahead or self.site_now is None:
            return
        example_id, example_at = ahead[0]
        self._note(
            entity_type,
            f"{len(ahead)} {entity_type} record(s) not scheduled for publication are dated more "
            f"than a day after the site's clock ({when(self.site_now)}), e.g. "
            f"{record_label(entity_type, example_id)} at {when(example_at)}: the site's clock "
            "is probably wrong. They are stored; the sync position stays at the site's time, "
            "so no later change is missed.",
        )

    def _process_page(
        self,
        entity_type: str,
        mapped: list[MappedRecord],
        oversized: list | None = None,
        *,
        refetched: bool = False,
        notes: list[LogLine] | None = None,
        again: bool = False,
        behind: bool = False,
    ) -> None:
        """Decides and stores one page. `refetched`: records the change log named, fetched
        by id after the pages: they do not move the keyset position (they were not read in
        its order), and may have been logged by this job's pages already. `again`: a page
        of a type this job reads a second time (its records may be logged already).
        `behind`: the page may be stored while the next one is read (see _page_reads)."""
        counters = self.stats[entity_type]
        # Records the client could not download (larger than the response cap, §12): they
        # exist in WordPress, so they are reported as failed, never archived.
        for entry in oversized or []:
            record = MappedRecord(entity_type, str(entry.get("id", "")), None, {}, [], [])
            record.errors.append(str(entry.get("error") or "The record could not be downloaded."))
            record.modified_gmt = parse_cursor(entry.get("modified_gmt"))
            mapped.append(record)
        # The same record twice in one page would be two log rows: keep its last version.
        latest: dict[str, int] = {}
        for index, record in enumerate(mapped):
            if record.external_id:
                latest[record.external_id] = index
        mapped = [
            record
            for index, record in enumerate(mapped)
            if not record.external_id or latest[record.external_id] == index
        ]
        ids = list(latest)
        existing, holders = self._page_reads(entity_type, mapped, ids)

        logs: list[LogLine] = []
        writes: list[Write] = []
        for record in mapped:
            counters["processed"] += 1
            ex = existing.get(record.external_id)
            if not record.ok:
                self._fail(entity_type, record, ex, "; ".join(record.errors), logs)
                continue
            self._decide(entity_type, record, ex, logs, writes)
        # A reconciliation's walk meets again what its catch-up logged (the overlap's and the
        # change log's records): one indexed lookup a page, so each keeps one row.
        logs = self._one_row_per_record(
            entity_type, mapped, existing, logs, every=refetched or again or self.caught_up
        )
        logs += notes or []

        self._check_writes(entity_type, writes, holders)
        self._count_writes(entity_type, writes)
        if mapped and not refetched:
            self._advance_cursor(entity_type, mapped)
        self._watch_clock(mapped)
        self._commit(entity_type, writes, logs, behind=behind)

    def _settle(self) -> tuple[set, set]:
        """Wait for the page being stored behind, if any (it raises what storing it raised):
        from here on the store is this thread's; returns that page's records' ids and slugs.
        Its cancel request ends the job here, with nothing stored after that page."""
        behind, self._behind = self._behind, (set(), set())
        if self.store.settle():
            raise JobCancelled()
        return behind

    def _advance_cursor(self, entity_type, mapped: list[MappedRecord]) -> None:
        marks = [r.modified_gmt for r in mapped if r.modified_gmt is not None]
        if not marks:
            return
        current = parse_cursor(self.cursors.get(entity_type))
        top = max(marks)
        if self.site_now is not None and top > self.site_now:
            # A record dated in the future (a scheduled post stores its publish date as its
            # modification date) is stored, but the position never passes the site's "now":
            # past it, every record edited until that date would be skipped (§5.5).
            top = self.site_now
        if current is None or top > current:
            self.cursors[entity_type] = contract.format_gmt(top)

    def _watch_clock(self, mapped: list[MappedRecord]) -> None:
        """Collects the records of this page dated far after the site's clock, other than
        scheduled ones (see _note_future_records)."""
        if self.site_now is None:
            return
        limit = self.site_now + CLOCK_TOLERANCE
        self.ahead += [
            (record.external_id, record.modified_gmt)
            for record in mapped
            if record.modified_gmt is not None
            and record.modified_gmt > limit
            and record.values.get("status") != "future"
        ]

    def _commit(self, entity_type, writes, logs, *, behind: bool = False) -> None:
        # Refused pushes are marked after the page's log rows, in this thread: not behind.
        behind = behind and not self.refused
        if behind:  # what the next page's reads, made meanwhile, may not see (_page_reads)
            old = {w.existing.slug for w in writes if w.existing is not None}
            self._behind = (
                {w.mapped.external_id for w in writes},
                old | {w.mapped.values.get("slug") for w in writes},
            )
        cancel = self.store.commit_page(
            PageCommit(
                entity_type,
                writes,
                logs,
                self.stats,
                self.cursors,
                behind=behind,
            )
        )
        if self.refused:
            # After the log rows that tell why: a crash in between pushes once more.
            refused, self.refused = self.refused, []
            self.store.refuse_pushes(entity_type, refused)
        if cancel:
            raise JobCancelled()
