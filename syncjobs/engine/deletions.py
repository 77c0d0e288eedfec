"""Archiving what WordPress deleted or no longer serves, the deletion guard, their cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.wordpress import contract
from syncjobs.engine.plan import (
    ARCHIVE,
    DELETIONS_CURSOR,
    OVERLAP,
    SUCCESS,
    LogLine,
    deletion_entry,
    parse_cursor,
)

# Records per query of the archive walk, and per archiving batch after the deletion guard.
ARCHIVE_BATCH = 1000


class Deletions:
    """SyncEngine's part that archives (a mixin: the state is the engine's)."""

    def _archive_unseen(self, entity_type: str) -> None:
        """After a complete full listing: what the source no longer serves was deleted.

        "Seen" is "has a log row in this job": every record the listing returned got one
        (skipped and failed ones too), so nothing extra is written per record to know it.
        """
        if self._guarded(entity_type):
            return
        after = None
        while True:
            archived, after = self.store.archive_unseen(entity_type, after, ARCHIVE_BATCH)
            if archived:
                self._log_archived(entity_type, archived, self._unseen_reason())
            if after is None:
                return

    def _unseen_reason(self) -> str:
        reason = "Not served by WordPress any more"
        if self.reconciling and self.plan.count_drift:
            reason += " (a deletion missed by the incremental syncs: drift)"
        return reason

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
            batch, after = self.store.unseen(entity_type, after, ARCHIVE_BATCH)
            doomed += batch
            if after is None:
                break
        if not doomed:
            return True
        live = self.store.live_count(entity_type)
        if len(doomed) < max(minimum, 1) or len(doomed) * 100 <= percent * live:
            for start in range(0, len(doomed), ARCHIVE_BATCH):
                batch = doomed[start : start + ARCHIVE_BATCH]
                archived = self.store.archive_records(entity_type, batch)
                self._log_archived(entity_type, archived, self._unseen_reason())
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
        return parse_cursor(own or self.cursors.get(DELETIONS_CURSOR))

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
            entry = deletion_entry(
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
                    entry = deletion_entry(item)
                    if entry is None:
                        continue
                    entity_type, external_id, deleted = entry
                    top = deleted if top is None or deleted > top else top
                    if entity_type in enabled:  # disabled types: deletes nothing
                        by_type.setdefault(entity_type, []).append((external_id, deleted))
                lines = []
                for entity_type, entries in by_type.items():
                    archived = self.store.archive_deleted(entity_type, entries)
                    lines += self._archived(entity_type, archived, "Deleted in WordPress")
                for entity_type in feed_types:
                    if self._move_deletions_mark(entity_type, top):
                        moved.add(entity_type)
                # One commit a feed page, with the cursors it moved; current_entity_type stays
                # the last entity phase (it is shown as an entity type).
                self._commit(self.plan.entity_types[-1], [], lines)
            # The whole feed was read: a mark it did not move is settled.
            for entity_type in set(feed_types) - moved:
                self._settle_deletions_mark(entity_type)
            self._commit(self.plan.entity_types[-1], [], [])
        finally:
            close = getattr(pages, "close", None)
            if close:
                close()

    def _log_archived(self, entity_type, archived, reason) -> None:
        self._commit(entity_type, [], self._archived(entity_type, archived, reason))

    def _archived(self, entity_type, archived, reason) -> list[LogLine]:
        """Counts the archived (external_id, pk) records; returns their log lines."""
        self.stats[entity_type]["archived"] += len(archived)
        return [
            LogLine(entity_type, external_id, ARCHIVE, SUCCESS, reason + "; archived.", pk)
            for external_id, pk in archived
        ]
