"""The engine's store on the Django ORM (PostgreSQL in production and tests).

Every method is a fixed number of queries for a whole page, never one per record:
one query loads the page's existing records by external id, one checks its slugs, one
bulk upsert (INSERT … ON CONFLICT (connector, external_id) DO UPDATE) writes it, one bulk
insert writes its log rows, and one UPDATE publishes the job's progress. Each page is one
transaction, so a crash keeps every page committed before it and a re-run upserts on the same
(connector, external_id) keys: no duplicates.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connectors.models import Connector
from connectors.wordpress.errors import WordPressError
from connectors.wordpress.guard import GuardedTransport, OutboundGuard
from records.models import RECORD_MODELS
from syncjobs.engine.core import Existing, LogLine, MirrorFailed, SlugHolder, Write
from syncjobs.models import SyncJob, SyncLogEntry

logger = logging.getLogger(__name__)

# Which model field receives the mirrored copy of which URL field.
MIRRORED_FILES = {"article": ("featured_image_url", "featured_image")}
MIRROR_MAX_BYTES = 5 * 1024 * 1024
# Accepted image types, checked against the file's first bytes (not only the header).
IMAGE_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
LOG_BATCH = 1000


class DjangoStore:
    def __init__(self, job: SyncJob, connector: Connector):
        self.job = job
        self.connector = connector
        self.mirror_enabled = connector.mirror_images
        self._downloader: ImageDownloader | None = None

    def now(self) -> datetime:
        return timezone.now()

    # Reads --------------------------------------------------------------------------------

    def existing(self, entity_type: str, external_ids: list[str]) -> dict[str, Existing]:
        model = RECORD_MODELS[entity_type]
        file_fields = self._file_fields(entity_type)
        columns = [
            "pk",
            "external_id",
            "content_hash",
            "source_modified_at",
            "platform_modified_at",
            "archived_at",
        ]
        if model.has_slug:
            columns.append("slug")
        columns += [f for pair in file_fields for f in pair]
        found = {}
        # Served by the unique (connector, external_id) index.
        for row in model.objects.filter(
            connector_id=self.connector.pk, external_id__in=external_ids
        ).values(*columns):
            files = {name: row[name] for pair in file_fields for name in pair}
            found[row["external_id"]] = Existing(
                pk=row["pk"],
                external_id=row["external_id"],
                content_hash=row["content_hash"],
                source_modified_at=row["source_modified_at"],
                platform_modified_at=row["platform_modified_at"],
                archived_at=row["archived_at"],
                slug=row.get("slug", ""),
                files=files,
                mirror_missing=any(row[url] and not row[name] for url, name in file_fields),
            )
        return found

    def slug_holders(self, entity_type: str, slugs: list[str]) -> dict[str, SlugHolder]:
        model = RECORD_MODELS[entity_type]
        label = "name" if entity_type == "company" else "title"
        rows = model.objects.filter(
            organisation_id=self.connector.organisation_id, slug__in=slugs
        ).values(
            "pk", "slug", "external_id", "connector_id", "connector__name", label, "archived_at"
        )
        return {
            row["slug"]: SlugHolder(
                pk=row["pk"],
                external_id=row["external_id"],
                connector_id=row["connector_id"],
                connector_name=row["connector__name"] or "",
                label=row[label],
                archived=row["archived_at"] is not None,
                releasable=row["archived_at"] is not None
                and row["connector_id"] == self.connector.pk,
            )
            for row in rows
        }

    def platform_values(self, entity_type: str, pk: Any) -> dict:
        model = RECORD_MODELS[entity_type]
        from syncjobs.engine.mapping import MAPPINGS

        names = [spec.name for spec in MAPPINGS[entity_type]]
        return model.objects.filter(pk=pk).values(*names).get()

    # Files --------------------------------------------------------------------------------

    def _file_fields(self, entity_type: str) -> list[tuple[str, str]]:
        pair = MIRRORED_FILES.get(entity_type)
        return [pair] if pair and self.mirror_enabled else []

    def mirror(self, entity_type: str, write: Write) -> dict:
        files = {}
        for url_field, file_field in self._file_fields(entity_type):
            url = write.mapped.values.get(url_field) or ""
            existing = write.existing
            if not url:
                files[file_field] = ""
                continue
            unchanged_url = (
                existing is not None
                and existing.files.get(file_field)
                and existing.files.get(url_field) == url
            )
            if unchanged_url:
                files[file_field] = existing.files[file_field]
                continue
            if self._downloader is None:
                self._downloader = ImageDownloader()
            content, extension = self._downloader.fetch(url)
            folder = f"mirrored/{entity_type}s/{self.connector.organisation_id}"
            name = f"{folder}/{write.mapped.external_id}{extension}"
            files[file_field] = default_storage.save(name, ContentFile(content))
        return files

    # Writes -------------------------------------------------------------------------------

    def commit_page(
        self,
        entity_type: str,
        *,
        writes: list[Write],
        logs: list[LogLine],
        seen: list[str],
        stats: dict,
        cursors: dict,
    ) -> bool:
        now = timezone.now()
        with transaction.atomic():
            if writes:
                for write in self._upsert(entity_type, writes, now):
                    # The database refused a row the engine counted as written.
                    counters = stats[entity_type]
                    counters["created" if write.existing is None else "updated"] -= 1
                    counters["failed"] += 1
            if seen:
                # Records checked and still served: a later full-sync archive must spare them.
                RECORD_MODELS[entity_type].objects.filter(
                    connector_id=self.connector.pk, external_id__in=seen
                ).update(last_synced_at=now)
            if logs:
                SyncLogEntry.objects.bulk_create(
                    [
                        SyncLogEntry(
                            job_id=self.job.pk,
                            connector_id=self.connector.pk,
                            entity_type=line.entity_type,
                            external_id=line.external_id[:64],
                            internal_id=line.internal_id,
                            operation=line.operation,
                            status=line.status,
                            error=line.error,
                            processed_at=now,
                        )
                        for line in logs
                    ],
                    batch_size=LOG_BATCH,
                )
            if cursors != self.connector.cursors:
                Connector.objects.filter(pk=self.connector.pk).update(cursors=cursors)
                self.connector.cursors = dict(cursors)
            SyncJob.objects.filter(pk=self.job.pk).update(
                stats=stats, current_entity_type=entity_type, heartbeat_at=now
            )
            cancel_requested = (
                SyncJob.objects.filter(pk=self.job.pk)
                .values_list("cancel_requested_at", flat=True)
                .first()
            )
        return cancel_requested is not None

    def _build(self, entity_type: str, write: Write, now: datetime):
        model = RECORD_MODELS[entity_type]
        ex = write.existing
        obj = model(
            organisation_id=self.connector.organisation_id,
            connector_id=self.connector.pk,
            external_id=write.mapped.external_id,
            content_hash=write.hash,
            source_modified_at=write.mapped.modified_gmt,
            last_synced_at=now,
            archived_at=None,
            platform_modified_at=None
            if (ex is None or write.clear_platform_edit)
            else ex.platform_modified_at,
            **write.mapped.values,
            **write.files,
        )
        if ex is not None:
            obj.pk = ex.pk
        return obj

    def _update_fields(self, entity_type: str, writes: list[Write]) -> list[str]:
        from syncjobs.engine.mapping import MAPPINGS

        fields = [spec.name for spec in MAPPINGS[entity_type]]
        fields += [
            "content_hash",
            "source_modified_at",
            "last_synced_at",
            "archived_at",
            "platform_modified_at",
            "updated_at",
        ]
        fields += [name for _, name in self._file_fields(entity_type)]
        return fields

    def _upsert(self, entity_type: str, writes: list[Write], now: datetime) -> list[Write]:
        """Write the page; returns the writes the database refused (now FAILED)."""
        model = RECORD_MODELS[entity_type]
        update_fields = self._update_fields(entity_type, writes)
        released = [pk for write in writes for pk in write.release_pks]
        if released:
            model.objects.filter(pk__in=released, archived_at__isnull=False).update(slug="")
        objs = [self._build(entity_type, write, now) for write in writes]
        refused: list[Write] = []
        try:
            with transaction.atomic():
                model.objects.bulk_create(
                    objs,
                    update_conflicts=True,
                    unique_fields=["connector", "external_id"],
                    update_fields=update_fields,
                )
        except (IntegrityError, DataError) as exc:
            # A constraint the pre-checks could not foresee (e.g. two records swapping slugs
            # in one statement, a concurrent writer): save one by one so only the culprits fail.
            logger.info("bulk upsert of %s page failed (%s); retrying row by row", entity_type, exc)
            for write, obj in zip(writes, objs, strict=True):
                try:
                    with transaction.atomic():
                        model.objects.bulk_create(
                            [obj],
                            update_conflicts=True,
                            unique_fields=["connector", "external_id"],
                            update_fields=update_fields,
                        )
                except (IntegrityError, DataError) as row_exc:
                    write.log.status = "FAILED"
                    write.log.error = "Could not be saved: " + str(row_exc).splitlines()[0]
                    write.log.internal_id = write.existing.pk if write.existing else None
                    refused.append(write)
        for write, obj in zip(writes, objs, strict=True):
            if write.log.status != "FAILED":
                write.log.internal_id = obj.pk
        return refused

    # Archiving ----------------------------------------------------------------------------

    def archive_unseen(
        self, entity_type: str, cutoff: datetime, limit: int
    ) -> list[tuple[str, Any]]:
        model = RECORD_MODELS[entity_type]
        with transaction.atomic():
            rows = list(
                model.objects.select_for_update(skip_locked=True)
                .filter(connector_id=self.connector.pk, archived_at__isnull=True)
                .filter(Q(last_synced_at__lt=cutoff) | Q(last_synced_at__isnull=True))
                .values_list("pk", "external_id")[:limit]
            )
            if rows:
                model.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                    archived_at=timezone.now()
                )
        return [(external_id, pk) for pk, external_id in rows]

    def archive_deleted(
        self, entity_type: str, entries: list[tuple[str, datetime]]
    ) -> list[tuple[str, Any]]:
        model = RECORD_MODELS[entity_type]
        deleted_at: dict[str, datetime] = {}
        for external_id, deleted in entries:
            if external_id not in deleted_at or deleted > deleted_at[external_id]:
                deleted_at[external_id] = deleted
        rows = model.objects.filter(
            connector_id=self.connector.pk,
            external_id__in=list(deleted_at),
            archived_at__isnull=True,
        ).values_list("pk", "external_id", "source_modified_at")
        # §8.1: deleted only if the deletion is not older than the version we pulled
        # (a restored post comes back with a newer modified_gmt and stays live).
        doomed = [
            (external_id, pk)
            for pk, external_id, modified in rows
            if modified is None or deleted_at[external_id] >= modified
        ]
        if doomed:
            model.objects.filter(pk__in=[pk for _, pk in doomed]).update(archived_at=timezone.now())
        return doomed


class ImageDownloader:
    """Downloads files to mirror through the SSRF guard, size- and type-checked."""

    def __init__(self, *, max_bytes: int = MIRROR_MAX_BYTES, timeout: float = 20.0):
        self.guard = OutboundGuard(allow_private=settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
        self.client = httpx.Client(
            transport=GuardedTransport(self.guard),
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,
            headers={"User-Agent": "AssociationPlatform/1.0 (image mirror)"},
        )
        self.max_bytes = max_bytes

    def fetch(self, url: str) -> tuple[bytes, str]:
        prefix = f"The image {url[:300]} could not be downloaded: "
        current = url
        try:
            for _hop in range(4):
                self.guard.check_url(current)
                with self.client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise MirrorFailed(
                            prefix + f"the site answered HTTP {response.status_code}."
                        )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.max_bytes:
                        raise MirrorFailed(prefix + self._too_big(int(declared)))
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > self.max_bytes:
                            raise MirrorFailed(prefix + self._too_big(len(body)))
                    content_type = response.headers.get("content-type", "").split(";")[0].strip()
                    return bytes(body), self._check_type(prefix, bytes(body), content_type, current)
            raise MirrorFailed(prefix + "too many redirects.")
        except WordPressError as exc:
            raise MirrorFailed(prefix + exc.message) from None
        except httpx.HTTPError as exc:
            raise MirrorFailed(prefix + f"{type(exc).__name__}: {exc}") from None

    def _too_big(self, size: int) -> str:
        return f"it is larger than the {self.max_bytes // (1024 * 1024)} MiB limit ({size} bytes)."

    def _check_type(self, prefix: str, body: bytes, content_type: str, url: str) -> str:
        for mime, signatures in IMAGE_SIGNATURES.items():
            if any(body.startswith(sig) for sig in signatures):
                if mime == "image/webp" and body[8:12] != b"WEBP":
                    continue
                return mimetypes.guess_extension(mime) or ".img"
        shown = content_type or "no content type"
        name = posixpath.basename(urlsplit(url).path) or url
        raise MirrorFailed(prefix + f"{name} is not a PNG, JPEG, GIF or WebP image ({shown}).")
