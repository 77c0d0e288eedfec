"""Records fetched by WordPress id: the change log's (contract 1.2, §5.7) and the repair tools'."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors.wordpress import contract
from connectors.wordpress.errors import InvalidResponse
from records.mapping import map_page
from syncjobs.engine.plan import (
    CHANGES_CURSOR,
    SKIP,
    SKIPPED,
    LogLine,
    record_label,
    when,
)

if TYPE_CHECKING:
    from connectors.wordpress.pages import Page


class RecordsById:
    """SyncEngine's part that fetches records by id (a mixin: the state is the engine's)."""

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
                self.site_now = page.server_time or self.site_now
                mapped = map_page(entity_type, specs, items)
                oversized = list(page.skipped)
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
        self, entity_type: str, first: Page, mark: datetime | None, after: int | None
    ) -> bool:
        """Whether this incremental run cannot trust its positions and must read the whole
        type: each case is logged, and the re-read loses nothing (unchanged records SKIP)."""
        label = entity_type
        problem = ""
        if mark is not None and first.server_time is not None and mark > first.server_time:
            problem = (
                f"The site's clock says {when(first.server_time)}, earlier than this "
                f"connector's {entity_type} position ({when(mark)}): the site's clock was wrong "
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

    def _changed_records(self, entity_type: str, first: Page) -> None:
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
            self.site_now = page.server_time or self.site_now
            mapped = map_page(entity_type, specs, list(page.items or []))
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
