"""The engine's vocabulary: its plan, what it exchanges with its source and store, its counters."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from connectors.wordpress import contract
from connectors.wordpress.errors import (
    BadRequest,
    InvalidResponse,
    RecordNotFound,
    RedirectRefused,
    ResponseTooLarge,
    WriteConflict,
)
from records.mapping import (
    FieldSpec,
    MappedRecord,
    parse_gmt,
)

if TYPE_CHECKING:
    # A source's pages are the client's (connectors.wordpress.pages.Page), whoever serves them.
    from connectors.wordpress.pages import Page

logger = logging.getLogger(__name__)


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


# --- What the engine needs from its collaborators ---------------------------------------------


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


@dataclass
class PageCommit:
    """One page for the store to commit in one transaction: its writes and log lines, with
    the job's counters and cursors as of that page."""

    entity_type: str
    writes: list[Write]
    logs: list[LogLine]
    stats: dict
    cursors: dict
    # The caller reads its next page's records meanwhile and calls settle() before anything
    # else: the store may write this page in its writer thread (DjangoStore.commit_page).
    behind: bool = False


class Store(Protocol):
    def existing(self, entity_type: str, external_ids: list[str]) -> dict[str, Existing]: ...

    def slug_holders(self, entity_type: str, slugs: list[str]) -> dict[str, SlugHolder]: ...

    def platform_values(self, entity_type: str, pk: Any) -> dict: ...

    def mirror(self, entity_type: str, write: Write) -> dict: ...

    def commit_page(self, page: PageCommit) -> bool: ...

    def settle(self) -> bool: ...

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

    # The deletion guard's: walk what a full run would archive, count, archive, or hold.
    def unseen(self, entity_type: str, after: Any, limit: int) -> tuple[list, Any]: ...

    def live_count(self, entity_type: str) -> int: ...

    def archive_records(self, entity_type: str, doomed: list[tuple[str, Any]]) -> list: ...

    def hold(self, entity_type: str, external_ids: list[str], live: int) -> int: ...

    def logged_in_job(
        self, entity_type: str, external_ids: list[str]
    ) -> dict[str, list[tuple[str, str]]]: ...


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
    # A reconciliation's writes are drift, noted as such in the log; not when it re-stores
    # records after a mapping change (see mapping.MAPPING_REVISION).
    count_drift: bool = True
    # A preview (SyncJob.dry_run): decide everything, push nothing (the store writes nothing).
    dry_run: bool = False
    # The deletion guard: (percent, minimum). A full walk that would archive more than
    # `percent` % of a type's live records, and at least `minimum`, holds them instead
    # (Deletions._guarded). None: no guard.
    deletion_guard: tuple[int, int] | None = None
    # An administrator's answer to a conflict on this same WordPress version, in words, or ""
    # (entity type, WordPress id, content hash): syncjobs.conflict_memory.remembered_answer.
    conflict_answer: Callable[[str, str, str], str] = lambda entity_type, external_id, digest: ""


def fresh_counters() -> dict[str, int]:
    return dict.fromkeys(COUNTER_KEYS, 0)


def parse_cursor(value: Any) -> datetime | None:
    try:
        return parse_gmt(value) if value else None
    except ValueError:
        return None


# The counter a log row counted in (see _one_row_per_record).
COUNTER_OF = {
    (CREATE, SUCCESS): "created",
    (UPDATE, SUCCESS): "updated",
    (SKIP, SKIPPED): "skipped",
    (CREATE, FAILED): "failed",
    (UPDATE, FAILED): "failed",
    (UPDATE, CONFLICT): "conflicts",
    (SYNC, SUCCESS): "pushed",
    (SYNC, FAILED): "push_failed",
}


def deletion_entry(item: Any) -> tuple[str, str, datetime] | None:
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


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "an unknown time"
