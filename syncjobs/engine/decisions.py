"""What becomes of each record of a page (CREATE, UPDATE, SKIP, CONFLICT, FAILED): the reads it is
decided on, the decision, its checks."""

from __future__ import annotations

from connectors.wordpress.errors import MirrorFailed
from records.mapping import content_hash
from syncjobs.engine.plan import (
    CONFLICT,
    COUNTER_OF,
    CREATE,
    DRIFT_NOTE,
    FAILED,
    SKIP,
    SKIPPED,
    SUCCESS,
    SYNC,
    UPDATE,
    WORDPRESS_WINS,
    LogLine,
    Write,
    record_label,
    when,
)


class Decisions:
    """SyncEngine's part that decides records (a mixin: the state is the engine's)."""

    def _page_reads(self, entity_type, mapped, ids) -> tuple[dict, dict]:
        """The page's stored records, and the holders of the slugs it may write (None: free),
        read while the page before it may still be being stored (commit_page's `behind`),
        then settled. A page writes only its own records and slugs: when it wrote some of
        these, they are read again; nothing else it can have changed. Read after the
        settling, they kept the writer idle meanwhile: a cold import took 12 % longer."""
        while True:
            existing = self.store.existing(entity_type, ids) if ids else {}
            slugs = set()
            if entity_type in self.plan.slugged:  # those of records that may be written
                slugs = {
                    record.values.get("slug")
                    for record in mapped
                    if record.ok
                    and getattr(existing.get(record.external_id), "content_hash", None)
                    != record.digest
                } - {"", None}
            holders = dict.fromkeys(slugs)
            if slugs:
                holders.update(self.store.slug_holders(entity_type, sorted(slugs)))
            ids_behind, slugs_behind = self._settle()
            if ids_behind.isdisjoint(ids) and slugs_behind.isdisjoint(slugs):
                return existing, holders

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
                counter = COUNTER_OF.get((operation, status))
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

    def _check_writes(self, entity_type, writes, holders=None) -> None:
        """What every batch of writes goes through before the store: slugs, then mirroring.
        `holders`: slug holders read already (_page_reads)."""
        if entity_type in self.plan.slugged:
            self._check_slugs(entity_type, writes, holders or {})
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
        A conflict an administrator already answered on this same WordPress version (kept the
        platform's, or dismissed: Plan.conflict_answer) is a SKIP naming that answer.
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
        if (
            conflict
            and not push
            and self.plan.conflict_policy != WORDPRESS_WINS
            and (answer := self.plan.conflict_answer(entity_type, record.external_id, digest))
        ):
            # The admin kept the platform version or dismissed the conflict on this very
            # WordPress version: it is not theirs to answer again (a later edit is).
            counters["skipped"] += 1
            logs.append(LogLine(entity_type, record.external_id, SKIP, SKIPPED, answer, ex.pk))
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
                    f"Changed on the platform at {when(ex.platform_modified_at)}, after the "
                    f"WordPress edit of {when(record.modified_gmt)}: the platform wins, the "
                    "WordPress data was not written (conflict policy: platform wins).",
                    ex.pk,
                )
            )
            return
        note = DRIFT_NOTE if self.reconciling and self.plan.count_drift else ""
        if conflict:
            note = (
                f"Conflict: the platform edit of {when(ex.platform_modified_at)} was "
                f"overwritten by WordPress (conflict policy: WordPress wins)."
            )
        log = LogLine(
            entity_type, record.external_id, UPDATE if ex else CREATE, SUCCESS, note, ex and ex.pk
        )
        logs.append(log)
        writes.append(Write(record, digest, ex, log, clear_platform_edit=conflict))

    def _check_slugs(self, entity_type, writes, holders) -> None:
        """Detect duplicate slugs in the organisation before the write (unique per org)."""
        slugs = sorted({w.mapped.values.get("slug") for w in writes} - {"", None})
        missing = [slug for slug in slugs if slug not in holders]
        if missing:
            holders = {**holders, **self.store.slug_holders(entity_type, missing)}
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
