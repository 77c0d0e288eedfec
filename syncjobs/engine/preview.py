"""The preview ("dry run") store: what a full sync would do, with nothing written.

PreviewStore reads like the DjangoStore it extends (the records, their slugs, the live records
to walk for archiving) and writes nothing to records, cursors or the record log: the decisions
the engine makes are only counted in the job's stats, and the first failures' reasons are kept
on the job (SyncJob.preview_failures). What a real sync learns from its own log rows (which
records this job has seen, so the archive walk spares them) it keeps in memory instead: a set
of ids per type, a few megabytes at 100,000 records.

Slugs: a real sync sees the slugs its earlier pages wrote; a preview does not, so two new
records of different pages claiming one slug both count as created (the real sync fails the
second). Files are not downloaded: a record whose image would be mirrored counts as written.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.utils import timezone

from syncjobs.engine.plan import FAILED, PageCommit, Write
from syncjobs.engine.store import DjangoStore
from syncjobs.models import SyncJob

# Failures kept per type for the preview page: enough to see what kind of problem it is.
FIRST_FAILURES = 5
# Seconds between two progress updates of the job row (the preview writes nothing else).
PROGRESS_EVERY = 1.0


class PreviewStore(DjangoStore):
    def __init__(self, job: SyncJob, connector):
        super().__init__(job, connector)
        self.seen: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self.failures: dict[str, list[list[str]]] = {}
        self._published = 0.0

    def commit_page(self, page: PageCommit) -> bool:  # nothing written: nothing behind
        entity_type = page.entity_type
        seen = self.seen.setdefault(entity_type, {})
        for line in page.logs:
            if not line.external_id:
                continue  # a note about the site, not a record
            if line.replaces:
                seen[line.external_id] = []
            seen.setdefault(line.external_id, []).append((line.operation, line.status))
            kept = self.failures.setdefault(entity_type, [])
            if line.status == FAILED and len(kept) < FIRST_FAILURES:
                kept.append([line.external_id, line.error])
        now = time.monotonic()
        if now - self._published < PROGRESS_EVERY:
            return False
        self._published = now
        return self.publish(entity_type, page.stats)

    def publish(self, entity_type: str | None, stats: dict) -> bool:
        """Stores the counters so far on the job; returns whether a cancel was requested."""
        fields: dict[str, Any] = {
            "stats": {key: dict(counters) for key, counters in stats.items()},
            "preview_failures": self.failures,
            "heartbeat_at": timezone.now(),
        }
        if entity_type:
            fields["current_entity_type"] = entity_type
        jobs = SyncJob.objects.filter(pk=self.job.pk)
        jobs.update(**fields)
        return bool(jobs.values_list("cancel_requested_at", flat=True).first())

    def logged_in_job(self, entity_type: str, external_ids: list[str]) -> dict:
        seen = self.seen.get(entity_type, {})
        return {i: seen[i] for i in external_ids if seen.get(i)}

    def _logged(self, entity_type: str, external_ids: list[str]) -> set[str]:
        seen = self.seen.get(entity_type, {})
        return {i for i in external_ids if i in seen}

    def archive_unseen(self, entity_type: str, after: Any, limit: int):
        return self.unseen(entity_type, after, limit)

    def archive_deleted(self, entity_type: str, entries: list[tuple[str, datetime]]):
        return self._deletable(entity_type, entries)

    def mirror(self, entity_type: str, write: Write) -> dict:
        return {}

    def refuse_pushes(self, entity_type: str, refused: list) -> None:
        return None
