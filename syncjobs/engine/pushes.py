"""Two-way sync: pushing platform edits to WordPress and settling the conflicts it answers."""

from __future__ import annotations

from datetime import datetime

from connectors.wordpress.errors import WriteConflict
from records.mapping import content_hash, map_record, reverse_map
from syncjobs.engine.plan import (
    FAILED,
    RECORD_PUSH_ERRORS,
    REFUSED_PUSH_ERRORS,
    SUCCESS,
    SYNC,
    UPDATE,
    WORDPRESS_WINS,
    Existing,
    LogLine,
    Write,
    record_label,
    when,
)


class Pushes:
    """SyncEngine's part that pushes (a mixin: the state is the engine's)."""

    def _push_pending(self, entity_type: str) -> None:
        """Two-way, incremental: push the records edited only on the platform.

        An incremental run's pages bring only what changed in WordPress, so without this a
        platform-only edit would wait for the next full run's SYNC decision (_decide). The
        store lists, in batches, the records whose platform edit is newer than their last
        sync, not refused by WordPress and not logged by this job yet (the pages' records were
        decided there); each is pushed under either conflict policy, with the WordPress
        version it was edited from as `if_unmodified_since` (§7.2), so a WordPress edit made
        meanwhile answers 409 instead of being overwritten.
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
            f"{when(ex.platform_modified_at)}"
        )
        log = LogLine(
            entity_type,
            ex.external_id,
            UPDATE,
            SUCCESS,
            f"Conflict: WordPress refused the push (409), the record was changed in WordPress "
            f"at {when(current.modified_gmt)}; its version was stored and the platform edit "
            f"dropped ({why}).",
            ex.pk,
        )
        logs.append(log)
        writes.append(
            Write(current, content_hash(current.values), ex, log, clear_platform_edit=True)
        )
        return True
