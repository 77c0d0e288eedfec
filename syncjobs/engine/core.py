"""The sync engine: pages from a source in, decisions and batched writes to a store out.

Plain Python: no Django, no Celery, no HTTP. The runner hands it a *source* (the WordPress
client, or anything with the same `iter_pages` / `iter_deletions` / `push_record`) and a *store*
(syncjobs.engine.store.DjangoStore in production). The engine decides, per record, CREATE /
UPDATE / SKIP / CONFLICT / SYNC / FAILED and, per phase, what to archive; the store does the
I/O in one transaction per page. Memory is bounded by one page: nothing is accumulated across
pages except counters and cursors.

Phases run in the canonical entity order, enabled types only. An incremental run starts each
type at its high-water mark (the source's own `modified_gmt` of the last record seen, never the
worker's clock, and never past the site's own clock: a scheduled post is dated in the future)
minus the contract's overlap. Since contract 1.2 the same first request also brings the ids the
plugin's change log recorded after the type's position in it (changes that leave `modified_gmt`
alone: cron publishing, meta, terms, media, roles); the phase fetches those the pages did not
bring, by id, and moves the position with them (§5.7). A position it cannot trust (the site's
clock behind the mark, the log pruned past or restarted below the position) makes it log a line
and read the whole type again, which is idempotent. A full or initial run reads every record and
archives the platform records the source no longer serves. Both learn of deletions from the
first list page of each type (contract 1.1, §5.6: the type's deletions since its own deletions
cursor come inline, so a no-change incremental run costs one request per type); only a type
whose site did not send them (a 1.0 plugin) or capped them reads the plugin's deletions feed,
once per run after the phases. With two-way sync on, an incremental run also pushes, after
each type's pages, the records edited only on the platform: WordPress does not send them
again, so the pages alone would never push them. A reconciliation (RECONCILE) is an
incremental catch-up followed by a full walk whose creates, updates and archives are drift:
changes the incremental syncs missed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from connectors.wordpress import contract
from connectors.wordpress.errors import (
    BadRequest,
    InvalidResponse,
    RecordNotFound,
    RedirectRefused,
    ResponseTooLarge,
    WriteConflict,
)
from syncjobs.engine.mapper import InlineMapper, ProcessMapper
from syncjobs.engine.mapping import (
    FieldSpec,
    MappedRecord,
    content_hash,
    map_record,
    parse_gmt,
    reverse_map,
)

logger = logging.getLogger(__name__)


def bench_without(mechanism: str) -> bool:
    """Bench-only switch (issue 20's measurement): SYNC_BENCH_WITHOUT=prefetch,bitmap,..."""
    import os

    return mechanism in os.environ.get("SYNC_BENCH_WITHOUT", "").split(",")


COUNTER_KEYS = (
    "total",
    "processed",
    "created",
    "updated",
    "skipped",
    "conflicts",
    "failed",
    "archived",
    "pushed",
    "push_failed",
)
# Before contract 1.1 one cursor followed the deletions feed for every type; it is now only
# read, as the starting point of a type that has no cursor of its own yet.
DELETIONS_CURSOR = "deletions"
# A type that never had a deletion asks for all of them: an empty answer costs nothing.
NO_DELETIONS_YET = datetime(1970, 1, 1, tzinfo=UTC)
OVERLAP = timedelta(seconds=contract.INCREMENTAL_OVERLAP_SECONDS)
# The type's position in the site's change log (contract 1.2, §5.7): cursors["changes:article"].
CHANGES_CURSOR = "changes"
# A record dated this far after the site's clock, and not scheduled, points at a wrong clock.
CLOCK_TOLERANCE = timedelta(days=1)
# Push errors that concern one record; anything else (auth, site down) stops the job.
# Of those, WordPress's answer to this version of the record, which a retry cannot change
# (4xx other than 409 and 429: a validation error, a record that no longer exists): the
# edit is not pushed again until the record is edited on the platform again.
REFUSED_PUSH_ERRORS = (BadRequest, RecordNotFound)
RECORD_PUSH_ERRORS = (
    WriteConflict,
    BadRequest,
    RecordNotFound,
    RedirectRefused,
    ResponseTooLarge,
    InvalidResponse,
)

# Operations and statuses, spelled as the SyncLogEntry choices.
CREATE, UPDATE, SKIP, SYNC, ARCHIVE = "CREATE", "UPDATE", "SKIP", "SYNC", "ARCHIVE"
SUCCESS, FAILED, SKIPPED, CONFLICT = "SUCCESS", "FAILED", "SKIPPED", "CONFLICT"

FULL, INITIAL, INCREMENTAL = "FULL", "INITIAL", "INCREMENTAL"
# A reconciliation: an incremental catch-up, then a full walk whose every create, update and
# archive is drift, a change the incremental syncs missed (see SyncEngine.run).
RECONCILE = "RECONCILE"
DRIFT_NOTE = "Missed by the incremental syncs (drift): repaired by the reconciliation."
PLATFORM_WINS, WORDPRESS_WINS = "platform_wins", "wordpress_wins"


class JobCancelled(Exception):
    """An admin asked the job to stop; raised at a page boundary."""


class MirrorFailed(Exception):
    """A file to mirror could not be downloaded or was refused (size, type)."""


# --- What the engine needs from its collaborators ---------------------------------------------


class Page(Protocol):
    items: list
    total: int


class Source(Protocol):
    def iter_pages(
        self,
        entity_type: str,
        *,
        modified_after: datetime | None = None,
        per_page: int = 100,
        deleted_since: datetime | None = None,
    ) -> Iterator[Page]: ...

    def iter_deletions(self, since: datetime | None) -> Iterator[Page]: ...

    def fetch_changed(
        self, entity_type: str, ids: list[int], *, changes_after: int | None = None
    ) -> Page: ...

    def push_record(
        self,
        entity_type: str,
        id: int,
        fields: dict,
        *,
        if_unmodified_since: datetime | None = None,
    ) -> dict: ...


@dataclass
class Existing:
    """What the store knows of a record already on the platform (one batch query per page)."""

    pk: Any
    external_id: str
    content_hash: str
    source_modified_at: datetime | None
    platform_modified_at: datetime | None
    archived_at: datetime | None
    slug: str = ""
    # The record needs a file mirrored it does not have yet (mirroring turned on later).
    mirror_missing: bool = False
    files: dict = field(default_factory=dict)
    # The platform_modified_at of an edit WordPress refused for good (see REFUSED_PUSH_ERRORS).
    push_refused_at: datetime | None = None
    # Written by this job already (an earlier page had it: see SyncEngine._one_row_per_record).
    synced_in_job: bool = False

    @property
    def push_refused(self) -> bool:
        """Its current platform edit was refused by WordPress: do not push it again."""
        return bool(
            self.push_refused_at
            and self.platform_modified_at
            and self.platform_modified_at <= self.push_refused_at
        )


@dataclass
class SlugHolder:
    pk: Any
    external_id: str
    connector_id: Any
    connector_name: str
    label: str
    archived: bool
    # Archived and from the syncing connector: its slug may be taken over.
    releasable: bool = False


@dataclass
class LogLine:
    entity_type: str
    external_id: str
    operation: str
    status: str
    error: str = ""
    internal_id: Any = None
    # An earlier page of this job logged the record: the store deletes that row in the
    # transaction that inserts this one, so a crash between the two cannot lose it.
    replaces: bool = False


@dataclass
class Write:
    """One upsert: the mapped values plus bookkeeping the store needs."""

    mapped: MappedRecord
    hash: str
    existing: Existing | None
    log: LogLine
    clear_platform_edit: bool = False
    files: dict = field(default_factory=dict)
    # Archived records whose slug this write takes over (their slug is emptied first).
    release_pks: list = field(default_factory=list)


class Store(Protocol):
    def existing(self, entity_type: str, external_ids: list[str]) -> dict[str, Existing]: ...

    def slug_holders(self, entity_type: str, slugs: list[str]) -> dict[str, SlugHolder]: ...

    def platform_values(self, entity_type: str, pk: Any) -> dict: ...

    def mirror(self, entity_type: str, write: Write) -> dict: ...

    def commit_page(
        self,
        entity_type: str,
        *,
        writes: list[Write],
        logs: list[LogLine],
        stats: dict,
        cursors: dict,
    ) -> bool: ...

    def archive_unseen(
        self, entity_type: str, after: Any, limit: int
    ) -> tuple[list[tuple[str, Any]], Any]: ...

    def archive_deleted(
        self, entity_type: str, entries: list[tuple[str, datetime]]
    ) -> list[tuple[str, Any]]: ...

    def pending_pushes(
        self, entity_type: str, after: Any, limit: int
    ) -> tuple[list[tuple[Existing, dict]], Any]: ...

    def refuse_pushes(self, entity_type: str, refused: list[tuple[Any, datetime]]) -> None: ...

    def logged_in_job(
        self, entity_type: str, external_ids: list[str]
    ) -> dict[str, list[tuple[str, str]]]: ...

    def has_records(self, entity_type: str, *, organisation: bool = False) -> bool: ...


class WrittenIds:
    """The records a phase has created, when it started with none of its type stored: a
    record it has not created cannot exist yet, so its page need not look it up (the page
    lookup was a round trip and a tenth of a cold import's database time).

    A bitmap by WordPress id (a positive integer), so memory stays bounded whatever the
    number of records: at most CAP bits (8 MB). An id beyond that, or one that is not an
    integer, counts as possibly written: it is looked up, as in any other phase.
    """

    CAP = 1 << 26

    def __init__(self) -> None:
        self._bits = bytearray()

    @classmethod
    def _number(cls, external_id: str) -> int | None:
        # Only the canonical form (str of a positive integer, as the mapping writes it):
        # anything else would share a bit with the number it reads as.
        if not (external_id.isascii() and external_id.isdigit()) or len(external_id) > 8:
            return None
        if external_id[0] == "0":
            return None
        number = int(external_id)
        return number if number < cls.CAP else None

    def add(self, external_id: str) -> None:
        number = self._number(external_id)
        if number is None:
            return
        byte = number >> 3
        if byte >= len(self._bits):  # grow by doubling: ids mostly come in no order
            self._bits.extend(bytes(max(byte + 1, 2 * len(self._bits)) - len(self._bits)))
        self._bits[byte] |= 1 << (number & 7)

    def may_exist(self, external_id: str) -> bool:
        number = self._number(external_id)
        if number is None:
            return True
        byte = number >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (number & 7)))


class WrittenSlugs:
    """The slugs a phase has given its records, when its organisation had no record of its
    type at the start: a slug it has not given cannot be taken yet, so the page need not
    look up its holder (the slug lookup was the other round trip of a cold import's page).

    A Bloom filter of fixed size (1 MB), so memory stays bounded whatever the number of
    records: a slug it holds is always reported as possibly taken, a slug it does not hold
    very rarely is too (then it is looked up, as in any other phase). A sync of another
    connector of the organisation writing the same type meanwhile is caught by the
    database's unique index, which fails the record with its own message.
    """

    BITS = 1 << 23
    _MASK = BITS - 1

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)

    def _positions(self, slug: str) -> tuple[int, int, int]:
        digest = hash(slug) & 0xFFFFFFFFFFFFFFFF  # stable within this process
        return digest & self._MASK, (digest >> 23) & self._MASK, (digest >> 41) & self._MASK

    def add(self, slug: str) -> None:
        for position in self._positions(slug):
            self._bits[position >> 3] |= 1 << (position & 7)

    def may_exist(self, slug: str) -> bool:
        return all(
            self._bits[position >> 3] & (1 << (position & 7)) for position in self._positions(slug)
        )


@dataclass
class FirstPage:
    """What a phase's first list answer says besides its records: the inline deletions
    (contract 1.1) and the site's clock and change log (1.2; None from an older plugin)."""

    deleted: list | None = None
    deleted_more: bool = False
    server_time: datetime | None = None
    change_seq: int | None = None
    changed: list[int] | None = None
    changed_next: int | None = None
    changed_more: bool = False
    change_log_from: int = 0

    @classmethod
    def of(cls, page) -> FirstPage:
        return cls(**{key: getattr(page, key, default) for key, default in _FIRST_PAGE_KEYS})


_FIRST_PAGE_KEYS = tuple(
    (name, value.default) for name, value in FirstPage.__dataclass_fields__.items()
)


@dataclass
class Plan:
    kind: str
    entity_types: list[str]
    specs: dict[str, tuple[FieldSpec, ...]]
    cursors: dict = field(default_factory=dict)
    two_way: bool = False
    conflict_policy: str = PLATFORM_WINS
    mirror: Callable[[str], bool] = lambda entity_type: False
    slugged: frozenset = frozenset()
    per_page: int = contract.MAX_PER_PAGE
    # Fetch the next page while this one is mapped and written (see Prefetched).
    prefetch: bool = True
    # A phase of more records than this maps its pages in a child process, on another core
    # (syncjobs.engine.mapper); None: always in the worker's own interpreter.
    mapper_process_min: int | None = None
    # A reconciliation's writes are drift, noted as such in the log; not when it re-stores
    # records after a mapping change (see mapping.MAPPING_REVISION).
    count_drift: bool = True
    # A preview (SyncJob.dry_run): decide everything, push nothing (the store writes nothing).
    dry_run: bool = False
    # The deletion guard: (percent, minimum). A full walk that would archive more than
    # `percent` % of a type's live records, and at least `minimum`, holds them instead
    # (Store.hold_unseen). None: no guard.
    deletion_guard: tuple[int, int] | None = None


def fresh_counters() -> dict[str, int]:
    return dict.fromkeys(COUNTER_KEYS, 0)


def _parse_cursor(value: Any) -> datetime | None:
    try:
        return parse_gmt(value) if value else None
    except ValueError:
        return None


class Prefetched:
    """Iterates `pages` one page ahead, in a thread: the site prepares and sends page n+1
    while the engine maps and writes page n, instead of each waiting for the other.

    At most one page is fetched ahead (memory stays bounded by two pages). Whatever the
    source raises (its typed errors, or a KeyboardInterrupt) is re-raised in the consumer at
    the page where it happened. close() stops the thread and closes the source's iterator; a
    page fetched ahead is dropped, never processed, so a cancelled job stores nothing after
    the page in progress.
    """

    _DONE = object()

    def __init__(self, pages: Iterator, prepare: Callable = lambda page: page, poll: float = 0.2):
        self._source = pages
        self._pages = iter(pages)
        self._prepare = prepare
        self._ready: queue.Queue = queue.Queue()
        self._wanted = threading.Semaphore(1)  # the first page is wanted at once
        self._stop = threading.Event()
        self._poll = poll
        self._thread = threading.Thread(target=self._run, name="sync-prefetch", daemon=True)
        self._thread.start()

    def _want(self) -> bool:
        while not self._stop.is_set():
            if self._wanted.acquire(timeout=self._poll):
                return not self._stop.is_set()
        return False

    def _run(self) -> None:
        try:
            while self._want():
                try:
                    page = next(self._pages)
                except StopIteration:
                    self._ready.put((self._DONE, None))
                    return
                self._ready.put((self._prepare(page), None))
        except BaseException as exc:  # handed to the consumer and raised there
            self._ready.put((None, exc))
        finally:
            close = getattr(self._source, "close", None)
            if close:
                close()

    def __iter__(self):
        return self

    def __next__(self):
        item, error = self._ready.get()
        if error is not None:
            raise error
        if item is self._DONE:
            raise StopIteration
        self._wanted.release()  # fetch the next page while this one is processed
        return item

    def close(self) -> bool:
        """Stops the thread; returns whether it has ended."""
        self._stop.set()
        # A request in flight finishes (or times out) on its own: don't hold the job for it.
        self._thread.join(timeout=10)
        return not self._thread.is_alive()


# --- The engine ------------------------------------------------------------------------------


class SyncEngine:
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
        # The mapping process, started by the first phase large enough (see _mapper_for),
        # and kept for the later ones: it is stopped when the run ends.
        self.process_mapper: ProcessMapper | None = None
        # This phase's created records, when it started with none stored (see WrittenIds),
        # and its slugs, when its organisation had none of its type (see WrittenSlugs).
        self.written: WrittenIds | None = None
        self.written_slugs: WrittenSlugs | None = None
        # A reconciliation's walk, after its catch-up sync logged some records in this job.
        self.caught_up = False
        # Contract 1.2 (§5.7): the site's clock as its last list answer gave it, the first
        # page's changed ids its pages have not brought yet, and records dated far ahead.
        self.site_now: datetime | None = None
        self.unseen_changed: set[str] = set()
        self.ahead: list[tuple[str, datetime]] = []
        # Archives held back by the deletion guard, per type (see _guarded).
        self.held: dict[str, int] = {}

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
        try:
            for entity_type in self.plan.entity_types:
                self._entity_phase(entity_type)
        finally:
            if self.process_mapper is not None:
                self.process_mapper.close()
        # Full syncs follow deletions too (inline, else the feed): it moves the deletions
        # cursors, so the next incremental reads only new entries.
        self._deletions_phase()
        return self.stats

    def run_records(self, records: dict[str, list[str]]) -> dict:
        """Fetch these records by WordPress id (the `include=` list parameter, at most 100 a
        request, §5.7) and decide each with the usual rules, instead of the phases: the
        repair tools' retry of a job's failed records and "sync this record". A record
        WordPress no longer serves is archived if the platform has it (as a full sync would),
        else logged as not found (`self.not_found`). Returns the stats."""
        self.not_found: list[tuple[str, str]] = []
        for entity_type, ids in records.items():
            self.stats[entity_type]["total"] = len(ids)
            self._commit(entity_type, [], [])
            specs = self.plan.specs[entity_type]
            for start in range(0, len(ids), contract.MAX_INCLUDE_IDS):
                wanted = [str(i) for i in ids[start : start + contract.MAX_INCLUDE_IDS]]
                page = self.source.fetch_changed(entity_type, [int(i) for i in wanted])
                items = list(page.items or [])
                stray = {str(item.get("id")) for item in items if isinstance(item, dict)}
                if stray - set(wanted):
                    # A site older than contract 1.2 ignores `include` and serves its first
                    # page: what it left out would look deleted, and be archived wrongly.
                    raise InvalidResponse(
                        "The site ignored the request for records by id (`include`, sync API "
                        "contract 1.2): update the Association App plugin to use this tool.",
                        status_code=200,
                        url=entity_type,
                    )
                self.site_now = getattr(page, "server_time", None) or self.site_now
                mapped = InlineMapper().submit(entity_type, specs, items)()
                oversized = list(getattr(page, "skipped", None) or [])
                served = {r.external_id for r in mapped} | {str(e.get("id")) for e in oversized}
                self._process_page(entity_type, mapped, oversized, refetched=True)
                self._not_served(entity_type, [i for i in wanted if i not in served])
        return self.stats

    def _not_served(self, entity_type: str, ids: list[str]) -> None:
        """Records asked for by id that WordPress did not return: deleted (or no longer
        published to the sync API) meanwhile."""
        if not ids:
            return
        deleted_at = max(self.site_now or datetime.now(UTC), datetime.now(UTC))
        archived = self.store.archive_deleted(entity_type, [(i, deleted_at) for i in ids])
        if archived:
            self._log_archived(
                entity_type, archived, "Not served by WordPress any more when fetched by id"
            )
        gone = set(ids) - {external_id for external_id, _ in archived}
        known = self.store.existing(entity_type, sorted(gone)) if gone else {}
        lines = []
        for external_id in sorted(gone):
            self.stats[entity_type]["processed"] += 1
            self.stats[entity_type]["skipped"] += 1
            if external_id not in known:
                self.not_found.append((entity_type, external_id))
            lines.append(
                LogLine(
                    entity_type,
                    external_id,
                    SKIP,
                    SKIPPED,
                    f"{record_label(entity_type, external_id)}: WordPress does not serve this "
                    "record (deleted, trashed, or never published to the sync API)"
                    + ("; it was archived before." if external_id in known else "; nothing to do."),
                    known[external_id].pk if external_id in known else None,
                )
            )
        self._commit(entity_type, [], lines)

    def _mapper_for(self, total: int) -> InlineMapper | ProcessMapper:
        """Where a phase of `total` records maps its pages: a child process pays for its
        start (a tenth of a second, once per run) from a few thousand records on."""
        threshold = self.plan.mapper_process_min
        if threshold is None or total <= threshold:
            return InlineMapper()
        if self.process_mapper is None:
            self.process_mapper = ProcessMapper()
        return self.process_mapper

    # Entity phase -----------------------------------------------------------------------

    def _entity_phase(self, entity_type: str) -> None:
        modified_after = None
        mark = _parse_cursor(self.cursors.get(entity_type))
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
            # Re-read the whole type (idempotent: what did not change is a SKIP).
            self._read_pages(entity_type, None)
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
    ) -> FirstPage | None:
        """Reads the type's list pages from `modified_after` and processes their records;
        returns what the first page said besides its records (None if there was none)."""
        counters = self.stats[entity_type]
        # Only this job writes this connector's records (one job in flight per connector):
        # if it has none of this type now, only those this phase creates can exist.
        has_records = getattr(self.store, "has_records", None)
        cold = (
            has_records is not None and not bench_without("bitmap") and not has_records(entity_type)
        )
        self.written = WrittenIds() if cold else None
        cold_slugs = (
            cold
            and entity_type in self.plan.slugged
            and not has_records(entity_type, organisation=True)
        )
        self.written_slugs = WrittenSlugs() if cold_slugs else None
        kwargs = {"modified_after": modified_after, "per_page": self.plan.per_page}
        if deleted_since is not None:
            kwargs["deleted_since"] = deleted_since
        if changes_after is not None:
            kwargs["changes_after"] = changes_after
        pages = source_pages = self.source.iter_pages(entity_type, **kwargs)
        first: FirstPage | None = None
        specs = self.plan.specs[entity_type]

        mapper = None

        def prepare(page):
            # Pure computation (no I/O, no shared state): runs in the prefetch thread, so
            # the next page is mapped and hashed while this thread waits on the database;
            # in a large phase, by a child process on another core.
            nonlocal mapper
            if mapper is None:
                mapper = self._mapper_for(int(getattr(page, "total", 0) or 0))
            return page, mapper.submit(entity_type, specs, list(page.items or []))

        if self.plan.prefetch and not self.plan.two_way and not bench_without("prefetch"):
            # Two-way pushes go through the same client from this thread: no prefetch then.
            pages = Prefetched(pages, prepare)
        else:
            pages = map(prepare, pages)
        try:
            for page, mapped_later in pages:
                mapped = mapped_later()  # the page's records, once mapped
                if first is None:
                    counters["total"] = max(counters["total"], int(getattr(page, "total", 0) or 0))
                    first = FirstPage.of(page)
                    self.site_now = first.server_time
                    self.unseen_changed = set(map(str, first.changed or ()))
                else:
                    self.site_now = getattr(page, "server_time", None) or self.site_now
                if self.unseen_changed:
                    # The change log's first ids this page brought need no second fetch: the
                    # page was read after their entries had settled (§5.7).
                    self.unseen_changed -= {record.external_id for record in mapped}
                self._process_page(entity_type, mapped, list(getattr(page, "skipped", None) or []))
        finally:
            # The source's iterator, whichever wrapper is around it.
            close = getattr(pages, "close", None) or getattr(source_pages, "close", None)
            stopped = close() is not False if close else True
            if mapper is not None and stopped:
                mapper.drain()  # a page sent ahead is answered and dropped
            elif mapper is not None:
                # The prefetch thread outlived close (a request in flight) and could still
                # send a page: this mapping process stops, a later phase starts its own.
                mapper.close()
        self._note_future_records(entity_type)
        return first

    # Change capture (contract 1.2, §5.7) ------------------------------------------------

    @staticmethod
    def changes_cursor_key(entity_type: str) -> str:
        return f"{CHANGES_CURSOR}:{entity_type}"

    def _changes_cursor(self, entity_type: str) -> int | None:
        value = self.cursors.get(self.changes_cursor_key(entity_type))
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _move_changes_cursor(self, entity_type: str, seq: int) -> None:
        """Sets the type's change-log position, committed now if it moved."""
        key = self.changes_cursor_key(entity_type)
        if self.cursors.get(key) != seq:
            self.cursors[key] = seq
            self._commit(entity_type, [], [])

    def _must_reread(
        self, entity_type: str, first: FirstPage, mark: datetime | None, after: int | None
    ) -> bool:
        """Whether this incremental run cannot trust its positions and must read the whole
        type: each case is logged, and the re-read loses nothing (unchanged records SKIP)."""
        label = entity_type
        problem = ""
        if mark is not None and first.server_time is not None and mark > first.server_time:
            problem = (
                f"The site's clock says {_when(first.server_time)}, earlier than this "
                f"connector's {entity_type} position ({_when(mark)}): the site's clock was wrong "
                "or was set back (or a record dated in the future moved the position before "
                f"contract 1.2). Every {label} record is read again, and the position is "
                "kept at the site's time from now on."
            )
            self.cursors.pop(entity_type, None)
        elif after is not None and first.change_seq < after:
            problem = (
                f"The site's change log restarted: its newest entry is number "
                f"{first.change_seq}, this connector had read up to {after} (the log was "
                f"emptied, or the site restored from a backup). Every {label} record is read "
                "again."
            )
        elif after is not None and first.change_log_from > after:
            problem = (
                f"The site's change log no longer holds entries {after + 1} to "
                f"{first.change_log_from} (deleted by its retention before this connector read "
                f"them): changes in between may be missing. Every {label} record is read again."
            )
        if problem:
            self._note(entity_type, problem)
        return bool(problem)

    def _changed_records(self, entity_type: str, first: FirstPage) -> None:
        """Fetches the records the change log named and the pages did not bring, 100 at a
        time; each request also asks for the next entries while there are more."""
        # Neither those the pages brought, nor those the same answer reported deleted: a
        # change then a deletion is the common end of a record, not worth a fetch and a note.
        gone = {str(d.get("id")) for d in first.deleted or () if isinstance(d, dict)}
        ids = [i for i in first.changed if str(i) in self.unseen_changed - gone]
        after, more = first.changed_next, first.changed_more
        specs = self.plan.specs[entity_type]
        while ids or more:
            page = self.source.fetch_changed(
                entity_type, ids, changes_after=after if more else None
            )
            self.site_now = getattr(page, "server_time", None) or self.site_now
            mapped = InlineMapper().submit(entity_type, specs, list(page.items or []))()
            returned = {record.external_id for record in mapped}
            notes = [
                LogLine(
                    entity_type,
                    str(record_id),
                    SKIP,
                    SKIPPED,
                    f"{record_label(entity_type, str(record_id))}: changed in WordPress, but no "
                    "longer served when the platform fetched it (deleted, trashed or moved "
                    "meanwhile); its deletion entry archives it.",
                )
                for record_id in ids
                if str(record_id) not in returned
            ]
            # The entries up to `after` are read once this page is stored: same transaction.
            self.cursors[self.changes_cursor_key(entity_type)] = after
            self._process_page(entity_type, mapped, refetched=True, notes=notes)
            if not more:
                break
            if page.changed is None or page.changed_next is None:
                raise InvalidResponse(
                    f"The site stopped serving its change log while {entity_type} entries "
                    f"after number {after} were still to be read.",
                    status_code=200,
                    url=entity_type,
                )
            ids, after, more = list(page.changed), page.changed_next, page.changed_more
        self._move_changes_cursor(entity_type, after)
        self._note_future_records(entity_type)

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
            f"than a day after the site's clock ({_when(self.site_now)}), e.g. "
            f"{record_label(entity_type, example_id)} at {_when(example_at)}: the site's clock "
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
    ) -> None:
        """Decides and stores one page. `refetched`: records the change log named, fetched
        by id after the pages: they do not move the keyset position (they were not read in
        its order), and may have been logged by this job's pages already."""
        counters = self.stats[entity_type]
        # Records the client could not download (larger than the response cap, §12): they
        # exist in WordPress, so they are reported as failed, never archived.
        for entry in oversized or []:
            record = MappedRecord(entity_type, str(entry.get("id", "")), None, {}, [], [])
            record.errors.append(str(entry.get("error") or "The record could not be downloaded."))
            record.modified_gmt = _parse_cursor(entry.get("modified_gmt"))
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
        if self.written is not None:
            ids = [external_id for external_id in ids if self.written.may_exist(external_id)]
        existing = self.store.existing(entity_type, ids) if ids else {}

        logs: list[LogLine] = []
        writes: list[Write] = []
        for record in mapped:
            counters["processed"] += 1
            ex = existing.get(record.external_id)
            if not record.ok:
                self._fail(entity_type, record, ex, "; ".join(record.errors), logs)
                continue
            self._decide(entity_type, record, ex, logs, writes)
        logs = self._one_row_per_record(entity_type, mapped, existing, logs, every=refetched)
        logs += notes or []

        self._check_writes(entity_type, writes)
        self._count_writes(entity_type, writes)
        for write in writes:
            if self.written is not None and write.existing is None:
                self.written.add(write.mapped.external_id)
        if mapped and not refetched:
            self._advance_cursor(entity_type, mapped)
        self._watch_clock(mapped)
        self._commit(entity_type, writes, logs)

    def _one_row_per_record(
        self, entity_type, mapped, existing, logs, *, every: bool = False
    ) -> list[LogLine]:
        """One log row per record per job. A record edited in WordPress while the job lists
        its type (a push is such an edit) moves to the end of the keyset order (§5.5) and
        comes again: its version decided here replaces the row an earlier page wrote, or, if
        it brings nothing new (SKIP), is not logged again. Returns the page's log lines.

        Only records this job may have logged are looked up (one query), so a listing of
        unchanged records costs nothing: those WordPress changed since the version stored,
        or that this job wrote already.
        """
        candidates = [
            record.external_id
            for record in mapped
            if (ex := existing.get(record.external_id)) is not None
            and (
                every
                or ex.synced_in_job
                or record.modified_gmt is None
                or ex.source_modified_at is None
                or record.modified_gmt > ex.source_modified_at
            )
        ]
        again = self.store.logged_in_job(entity_type, candidates) if candidates else {}
        if not again:
            return logs
        counters = self.stats[entity_type]
        kept = []
        for line in logs:
            earlier = again.get(line.external_id)
            if earlier is None:
                kept.append(line)
                continue
            if line.operation == SKIP:
                if not self.caught_up:  # the walk counts what the catch-up logged
                    counters["skipped"] -= 1
                    counters["processed"] -= 1
                continue
            # The earlier rows stop counting now; the store deletes them with the page that
            # inserts this line (LogLine.replaces), never before it: read, not deleted, here.
            for operation, status in earlier:
                counters["processed"] -= 1
                counter = _COUNTER_OF.get((operation, status))
                if counter:
                    counters[counter] -= 1
                if (operation, status, line.operation) == (CREATE, SUCCESS, UPDATE):
                    line.operation = CREATE  # this job created it, with its latest version
            line.replaces = True
            kept.append(line)
        return kept

    def _count_writes(self, entity_type, writes) -> None:
        """Counts the creates and updates that survived _check_writes (pushes count apart)."""
        counters = self.stats[entity_type]
        for write in writes:
            if write.log.status == SUCCESS and write.log.operation in (CREATE, UPDATE):
                counters["created" if write.log.operation == CREATE else "updated"] += 1

    def _check_writes(self, entity_type, writes) -> None:
        """What every batch of writes goes through before the store: slugs, then mirroring."""
        if entity_type in self.plan.slugged:
            self._check_slugs(entity_type, writes)
        if self.plan.mirror(entity_type):
            self._mirror(entity_type, writes)

    def _fail(self, entity_type, record, ex, error, logs) -> None:
        self.stats[entity_type]["failed"] += 1
        logs.append(
            LogLine(
                entity_type,
                record.external_id,
                UPDATE if ex else CREATE,
                FAILED,
                f"{record_label(entity_type, record.external_id)}: {error}",
                ex.pk if ex else None,
            )
        )

    def _decide(self, entity_type, record, ex, logs, writes) -> None:
        """CREATE / UPDATE / SKIP, or for a record edited on the platform after the WordPress
        version read here ("conflict" below), who wins:

        - WordPress did not change it since the last sync (`unchanged`): an edit made on the
          platform alone. Nothing to arbitrate, so the conflict policy does not apply: with
          two-way sync it is pushed (under either policy, in a full or an incremental run,
          see _push_pending), without it the platform keeps it (SKIP).
        - WordPress changed it too: a CONFLICT, and the connector's policy decides. Platform
          wins: its version is pushed (two-way) or WordPress's is not written (import only).
          WordPress wins: WordPress's version is written over the platform's edit.

        An edit WordPress refused for good (Existing.push_refused) is not pushed again: the
        record is decided as with import only, until it is edited on the platform again.
        """
        counters = self.stats[entity_type]
        digest = record.digest or content_hash(record.values)
        conflict = bool(
            ex
            and ex.platform_modified_at
            and (record.modified_gmt is None or ex.platform_modified_at > record.modified_gmt)
        )
        unchanged = ex is not None and digest == ex.content_hash and not ex.archived_at
        push = (
            conflict
            and self.plan.two_way
            and not ex.push_refused
            and (unchanged or self.plan.conflict_policy != WORDPRESS_WINS)
        )
        if unchanged and not ex.mirror_missing and not push:
            counters["skipped"] += 1
            logs.append(LogLine(entity_type, record.external_id, SKIP, SKIPPED, "", ex.pk))
            return
        if conflict and not unchanged:
            counters["conflicts"] += 1
        if push:
            self._push(
                entity_type,
                ex,
                self.store.platform_values(entity_type, ex.pk),
                logs,
                writes,
                if_unmodified_since=record.modified_gmt,
            )
            return
        if conflict and self.plan.conflict_policy != WORDPRESS_WINS:
            logs.append(
                LogLine(
                    entity_type,
                    record.external_id,
                    UPDATE,
                    CONFLICT,
                    f"Changed on the platform at {_when(ex.platform_modified_at)}, after the "
                    f"WordPress edit of {_when(record.modified_gmt)}: the platform wins, the "
                    "WordPress data was not written (conflict policy: platform wins).",
                    ex.pk,
                )
            )
            return
        note = DRIFT_NOTE if self.reconciling and self.plan.count_drift else ""
        if conflict:
            note = (
                f"Conflict: the platform edit of {_when(ex.platform_modified_at)} was "
                f"overwritten by WordPress (conflict policy: WordPress wins)."
            )
        log = LogLine(
            entity_type, record.external_id, UPDATE if ex else CREATE, SUCCESS, note, ex and ex.pk
        )
        logs.append(log)
        writes.append(Write(record, digest, ex, log, clear_platform_edit=conflict))

    def _push_pending(self, entity_type: str) -> None:
        """Two-way, incremental: push the records edited only on the platform.

        WordPress sends an incremental run only what changed there, so a record edited on the
        platform alone never comes back in the pages, and the SYNC decision a full run makes
        for it (_decide) would wait for the next full run. These are edits made on the
        platform only, pushed under either conflict policy, as _decide does. The store lists,
        in batches, the records whose platform edit is newer than their last sync, not refused
        by WordPress, and that this job has not logged yet (those the pages brought were
        decided there); each is pushed with the
        WordPress version it was edited from as `if_unmodified_since` (§7.2), so a WordPress
        edit made meanwhile answers 409 instead of being overwritten.
        """
        after = None
        while True:
            batch, after = self.store.pending_pushes(entity_type, after, self.plan.per_page)
            logs: list[LogLine] = []
            writes: list[Write] = []
            for ex, values in batch:
                self._push(
                    entity_type,
                    ex,
                    values,
                    logs,
                    writes,
                    if_unmodified_since=ex.source_modified_at,
                )
            if batch:
                self._check_writes(entity_type, writes)
                self._count_writes(entity_type, writes)
                self._commit(entity_type, writes, logs)
            if after is None:
                return

    def _push(
        self,
        entity_type: str,
        ex: Existing,
        values: dict,
        logs: list[LogLine],
        writes: list[Write],
        *,
        if_unmodified_since: datetime | None,
        settle: bool = True,
    ) -> None:
        """Two-way: send the platform's version (`values`, the record's mapped fields as
        stored) back through the plugin's write endpoint. A 409 is settled at once
        (_settle_conflict) unless `settle` is False (the push that settles one)."""
        counters = self.stats[entity_type]
        specs = self.plan.specs[entity_type]
        external_id = ex.external_id
        if self.plan.dry_run:
            # A preview must not change WordPress either: it counts the push it would make.
            counters["pushed"] += 1
            logs.append(LogLine(entity_type, external_id, SYNC, SUCCESS, "", ex.pk))
            return
        body = reverse_map(entity_type, values, specs)
        if not body:
            counters["push_failed"] += 1
            self.refused.append((ex.pk, ex.platform_modified_at))
            logs.append(
                LogLine(
                    entity_type,
                    external_id,
                    SYNC,
                    FAILED,
                    f"{record_label(entity_type, external_id)}: nothing to push, none of "
                    "this record's fields is writable in WordPress.",
                    ex.pk,
                )
            )
            return
        try:
            returned = self.source.push_record(
                entity_type,
                int(external_id),
                body,
                if_unmodified_since=if_unmodified_since,
            )
        except RECORD_PUSH_ERRORS as exc:
            if (
                settle
                and isinstance(exc, WriteConflict)
                and self._settle_conflict(entity_type, ex, values, exc, logs, writes)
            ):
                return
            counters["push_failed"] += 1
            if isinstance(exc, REFUSED_PUSH_ERRORS):
                # Logged this once: retrying the same version would get the same answer.
                self.refused.append((ex.pk, ex.platform_modified_at))
                error = (
                    f"{record_label(entity_type, external_id)}: WordPress refused the "
                    f"platform's version: {exc.message} It is not pushed again until the "
                    "record is edited on the platform again."
                )
            else:
                error = (
                    f"{record_label(entity_type, external_id)}: pushing the platform's "
                    f"version to WordPress failed: {exc.message}"
                )
            logs.append(LogLine(entity_type, external_id, SYNC, FAILED, error, ex.pk))
            return
        counters["pushed"] += 1
        log = LogLine(entity_type, external_id, SYNC, SUCCESS, "", ex.pk)
        logs.append(log)
        # §7.3: store what WordPress returned (HTML comes back rendered, modified_gmt bumped).
        stored = map_record(entity_type, returned, specs)
        if stored.ok and stored.external_id == external_id:
            writes.append(
                Write(stored, content_hash(stored.values), ex, log, clear_platform_edit=True)
            )
        else:
            log.error = "Pushed; the record WordPress returned could not be stored: " + (
                "; ".join(stored.errors) or "it has a different id"
            )

    def _settle_conflict(
        self,
        entity_type: str,
        ex: Existing,
        values: dict,
        exc: WriteConflict,
        logs: list[LogLine],
        writes: list[Write],
    ) -> bool:
        """A push answered 409: the record changed in WordPress after the version the
        platform edit was made from. The answer carries WordPress's current version (§7.2),
        so the conflict is settled now, as if a page had brought that version, instead of
        pushing the same stale version, and getting 409, at every incremental until a full
        sync (an incremental may never read the record again):

        - WordPress's change is the newer one, or the policy is WordPress wins: its version
          is stored and the platform edit is dropped (no longer pending).
        - The platform edit is the newer one and the platform wins: it is pushed once more,
          over the WordPress version now known; a second 409 is a failed push, left pending.

        Either way the conflict is counted. Returns False when the answer carries no usable
        record (the push then fails as before)."""
        specs = self.plan.specs[entity_type]
        current = map_record(entity_type, exc.current_record, specs, detail=False)
        if not current.ok or current.external_id != ex.external_id or not current.modified_gmt:
            return False
        self.stats[entity_type]["conflicts"] += 1
        platform_newer = bool(
            ex.platform_modified_at and ex.platform_modified_at > current.modified_gmt
        )
        if platform_newer and self.plan.conflict_policy != WORDPRESS_WINS:
            self._push(
                entity_type,
                ex,
                values,
                logs,
                writes,
                if_unmodified_since=current.modified_gmt,
                settle=False,
            )
            return True
        why = (
            "conflict policy: WordPress wins"
            if platform_newer
            else f"the WordPress change is newer than the platform edit of "
            f"{_when(ex.platform_modified_at)}"
        )
        log = LogLine(
            entity_type,
            ex.external_id,
            UPDATE,
            SUCCESS,
            f"Conflict: WordPress refused the push (409), the record was changed in WordPress "
            f"at {_when(current.modified_gmt)}; its version was stored and the platform edit "
            f"dropped ({why}).",
            ex.pk,
        )
        logs.append(log)
        writes.append(
            Write(current, content_hash(current.values), ex, log, clear_platform_edit=True)
        )
        return True

    def _check_slugs(self, entity_type, writes) -> None:
        """Detect duplicate slugs in the organisation before the write (unique per org)."""
        slugs = sorted({w.mapped.values.get("slug") for w in writes} - {"", None})
        if not slugs:
            return
        if self.written_slugs is not None:
            slugs = [slug for slug in slugs if self.written_slugs.may_exist(slug)]
        holders = self.store.slug_holders(entity_type, slugs) if slugs else {}
        # Records of this batch that move away from a slug free it for another of the batch.
        moving = {
            w.existing.pk: w.mapped.values.get("slug")
            for w in writes
            if w.existing is not None and w.existing.slug != w.mapped.values.get("slug")
        }
        claimed: dict[str, str] = {}
        kept = []
        for write in writes:
            slug = write.mapped.values.get("slug")
            own_pk = write.existing.pk if write.existing else None
            problem = ""
            if slug:
                holder = holders.get(slug)
                if slug in claimed:
                    problem = (
                        f"duplicate slug {slug!r}: {entity_type} {claimed[slug]} of the same "
                        "page already uses it, and slugs are unique in an organisation."
                    )
                elif holder and holder.pk != own_pk and holder.releasable:
                    # A record deleted in WordPress keeps no claim on its slug: WordPress
                    # itself gives it to the next post, so the archived copy lets go of it.
                    write.release_pks.append(holder.pk)
                    claimed[slug] = write.mapped.external_id
                elif holder and holder.pk != own_pk and holder.pk not in moving:
                    where = f"WordPress id {holder.external_id}"
                    if holder.connector_name:
                        where += f" from connector {holder.connector_name!r}"
                    problem = (
                        f"duplicate slug {slug!r}: the {entity_type} {holder.label!r} ({where}"
                        f"{', archived' if holder.archived else ''}) already uses it, and slugs "
                        "are unique in an organisation."
                    )
                else:
                    claimed[slug] = write.mapped.external_id
            if problem:
                self._demote(entity_type, write, problem)
            else:
                kept.append(write)
                if slug and self.written_slugs is not None:
                    self.written_slugs.add(slug)
        writes[:] = kept

    def _mirror(self, entity_type, writes) -> None:
        kept = []
        for write in writes:
            try:
                write.files = self.store.mirror(entity_type, write)
            except MirrorFailed as exc:
                self._demote(entity_type, write, str(exc))
                continue
            kept.append(write)
        writes[:] = kept

    def _demote(self, entity_type, write: Write, problem: str) -> None:
        """A planned write turned out impossible: it becomes a FAILED record."""
        if write.log.operation == SYNC:
            # The push already happened (counted as pushed); only storing the returned
            # version failed, so the edit stays pending and is pushed again next time.
            write.log.error = "Pushed; storing the returned record failed: " + problem
            return
        self.stats[entity_type]["failed"] += 1
        write.log.status = FAILED
        write.log.error = f"{record_label(entity_type, write.mapped.external_id)}: {problem}"

    def _advance_cursor(self, entity_type, mapped: list[MappedRecord]) -> None:
        marks = [r.modified_gmt for r in mapped if r.modified_gmt is not None]
        if not marks:
            return
        current = _parse_cursor(self.cursors.get(entity_type))
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

    def _commit(self, entity_type, writes, logs) -> None:
        cancel = self.store.commit_page(
            entity_type, writes=writes, logs=logs, stats=self.stats, cursors=self.cursors
        )
        if self.refused:
            # After the log rows that tell why: a crash in between pushes once more.
            refused, self.refused = self.refused, []
            self.store.refuse_pushes(entity_type, refused)
        if cancel:
            raise JobCancelled()

    # Archiving ----------------------------------------------------------------------------

    def _archive_unseen(self, entity_type: str) -> None:
        """After a complete full listing: what the source no longer serves was deleted.

        "Seen" is "has a log row in this job": every record the listing returned got one
        (skipped and failed ones too), so nothing extra is written per record to know it.
        """
        if self._guarded(entity_type):
            return
        after = None
        while True:
            archived, after = self.store.archive_unseen(entity_type, after, 1000)
            if archived:
                reason = "Not served by WordPress any more"
                if self.reconciling and self.plan.count_drift:
                    reason += " (a deletion missed by the incremental syncs: drift)"
                self._log_archived(entity_type, archived, reason)
            if after is None:
                return

    def _guarded(self, entity_type: str) -> bool:
        """The deletion guard: too many records to archive at once are held for review
        instead (one line in the log says so); returns whether it took over the archiving.

        One walk of the live records (the archive walk's own, index-driven batches) collects
        what it would archive, then they are held or archived: counting them first with an
        anti-join against the log just written was planned as a nested loop over it."""
        guard = self.plan.deletion_guard
        if guard is None or self.plan.dry_run:
            return False
        percent, minimum = guard
        doomed: list[tuple[str, Any]] = []
        after = None
        while True:
            batch, after = self.store.unseen(entity_type, after, 1000)
            doomed += batch
            if after is None:
                break
        if not doomed:
            return True
        live = self.store.live_count(entity_type)
        if len(doomed) < max(minimum, 1) or len(doomed) * 100 <= percent * live:
            reason = "Not served by WordPress any more"
            if self.reconciling and self.plan.count_drift:
                reason += " (a deletion missed by the incremental syncs: drift)"
            for start in range(0, len(doomed), 1000):
                archived = self.store.archive_records(entity_type, doomed[start : start + 1000])
                self._log_archived(entity_type, archived, reason)
            return True
        held = self.store.hold(entity_type, [external_id for external_id, _ in doomed], live)
        self.held[entity_type] = held
        self._note(
            entity_type,
            f"{held} of {live} {entity_type} records are no longer served by WordPress: more "
            f"than the deletion guard allows at once ({percent} % and at least {minimum}). "
            "They were not archived; they are held for review (approve or discard on the "
            "connector's Overview).",
        )
        return True

    @staticmethod
    def deletions_cursor(entity_type: str) -> str:
        return f"{DELETIONS_CURSOR}:{entity_type}"

    def _deletions_mark(self, entity_type: str) -> datetime | None:
        """The `deleted_gmt` up to which this type's deletions were applied."""
        own = self.cursors.get(self.deletions_cursor(entity_type))
        return _parse_cursor(own or self.cursors.get(DELETIONS_CURSOR))

    def _deleted_since(self, entity_type: str) -> datetime | None:
        """Where to ask for this type's deletions: the mark minus the overlap (an entry
        stamped in the mark's second can be committed after it was read), or the mark itself
        once a later run found nothing past it. Without that, a bulk deletion of more entries
        than the inline cap, all in the mark's second, would send every run to the feed."""
        mark = self._deletions_mark(entity_type)
        if mark is None:
            return None
        settled = self.cursors.get(self.deletions_cursor(entity_type) + ":settled")
        return mark if settled == contract.format_gmt(mark) else mark - OVERLAP

    def _move_deletions_mark(self, entity_type: str, top: datetime | None) -> bool:
        """Moves the mark forward to `top`; False if `top` is not past it."""
        mark = self._deletions_mark(entity_type)
        if top is None or (mark is not None and top <= mark):
            return False
        self.cursors[self.deletions_cursor(entity_type)] = contract.format_gmt(top)
        return True

    def _settle_deletions_mark(self, entity_type: str) -> None:
        """A run read the type's deletions and found nothing past the mark an earlier run
        set: late commits in its second have had a whole run's time to land and were read,
        so the next runs can ask from the mark itself, without the overlap."""
        mark = self._deletions_mark(entity_type)
        if mark is not None:
            key = self.deletions_cursor(entity_type)
            self.cursors[key] = self.cursors[key + ":settled"] = contract.format_gmt(mark)

    def _inline_deletions(self, entity_type: str, deleted: list | None, more: bool) -> None:
        """Archive what the first list page reported deleted (§5.6) and move the type's
        deletions cursor. A site that sent no `deleted` (contract 1.0), or capped it, leaves
        the type to the deletions feed, which then moves the cursor."""
        if deleted is None or more:
            self.feed_types.add(entity_type)
        entries = []
        for item in deleted or []:
            entry = _deletion_entry(
                {**item, "entity_type": entity_type} if isinstance(item, dict) else None
            )
            if entry is not None:
                entries.append(entry[1:])
        archived = self.store.archive_deleted(entity_type, entries) if entries else []
        if entity_type in self.feed_types:
            if archived:
                self._log_archived(entity_type, archived, "Deleted in WordPress")
            return
        before = dict(self.cursors)
        if not self._move_deletions_mark(entity_type, max((d for _, d in entries), default=None)):
            self._settle_deletions_mark(entity_type)
        if archived or self.cursors != before:
            # Committed with the cursor, even when nothing was left to archive.
            self._log_archived(entity_type, archived, "Deleted in WordPress")

    def _deletions_phase(self) -> None:
        """The feed, for the types whose list pages did not bring their deletions: read from
        the oldest of their cursors; entries of other enabled types are applied too (the
        store archives a record once), but only the feed's types' cursors move."""
        feed_types = [t for t in self.plan.entity_types if t in self.feed_types]
        if not feed_types:
            return
        enabled = set(self.plan.entity_types)
        starts = [self._deleted_since(t) for t in feed_types]
        since = None if None in starts else min(starts)
        moved: set[str] = set()
        pages = self.source.iter_deletions(since)
        try:
            for page in pages:
                by_type: dict[str, list[tuple[str, datetime]]] = {}
                top = None
                for item in page.items or []:
                    entry = _deletion_entry(item)
                    if entry is None:
                        continue
                    entity_type, external_id, deleted = entry
                    top = deleted if top is None or deleted > top else top
                    if entity_type in enabled:  # disabled types: deletes nothing
                        by_type.setdefault(entity_type, []).append((external_id, deleted))
                for entity_type, entries in by_type.items():
                    archived = self.store.archive_deleted(entity_type, entries)
                    self._log_archived(entity_type, archived, "Deleted in WordPress", commit=False)
                for entity_type in feed_types:
                    if self._move_deletions_mark(entity_type, top):
                        moved.add(entity_type)
                self._flush_archive_logs()
            # The whole feed was read: a mark it did not move is settled.
            for entity_type in set(feed_types) - moved:
                self._settle_deletions_mark(entity_type)
            self._commit(self.plan.entity_types[-1], [], [])
        finally:
            close = getattr(pages, "close", None)
            if close:
                close()

    _pending_archive_logs: list[LogLine] | None = None

    def _log_archived(self, entity_type, archived, reason, *, commit=True) -> None:
        self.stats[entity_type]["archived"] += len(archived)
        lines = [
            LogLine(entity_type, external_id, ARCHIVE, SUCCESS, reason + "; archived.", pk)
            for external_id, pk in archived
        ]
        if commit:
            self._commit(entity_type, [], lines)
        else:
            self._pending_archive_logs = (self._pending_archive_logs or []) + lines

    def _flush_archive_logs(self) -> None:
        lines, self._pending_archive_logs = self._pending_archive_logs or [], None
        # current_entity_type stays the last entity phase: it is shown as an entity type.
        self._commit(self.plan.entity_types[-1], [], lines)


# The counter a log row counted in (see _one_row_per_record).
_COUNTER_OF = {
    (CREATE, SUCCESS): "created",
    (UPDATE, SUCCESS): "updated",
    (SKIP, SKIPPED): "skipped",
    (CREATE, FAILED): "failed",
    (UPDATE, FAILED): "failed",
    (UPDATE, CONFLICT): "conflicts",
    (SYNC, SUCCESS): "pushed",
    (SYNC, FAILED): "push_failed",
}


def _deletion_entry(item: Any) -> tuple[str, str, datetime] | None:
    if not isinstance(item, dict):
        return None
    entity_type, record_id = item.get("entity_type"), item.get("id")
    if entity_type not in contract.ENTITY_TYPES:
        return None
    if isinstance(record_id, bool) or not isinstance(record_id, int) or record_id <= 0:
        return None
    try:
        deleted = parse_gmt(item.get("deleted_gmt"))
    except ValueError:
        return None
    return entity_type, str(record_id), deleted


def record_label(entity_type: str, external_id: str) -> str:
    """How a log message names the record it is about, e.g. "member 42"."""
    return f"{entity_type} {external_id}" if external_id else f"{entity_type} record without an id"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "an unknown time"


def summarise(stats: dict) -> dict[str, int]:
    totals = fresh_counters()
    for counters in stats.values():
        for key in COUNTER_KEYS:
            totals[key] += int(counters.get(key, 0))
    return totals


__all__ = [
    "COUNTER_KEYS",
    "Existing",
    "JobCancelled",
    "LogLine",
    "MirrorFailed",
    "Plan",
    "SlugHolder",
    "Source",
    "Store",
    "SyncEngine",
    "Write",
    "fresh_counters",
    "record_label",
    "summarise",
]
