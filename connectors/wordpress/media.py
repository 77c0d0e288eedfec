"""Mirroring records' images onto the platform: the checked download and the stored copy."""

from __future__ import annotations

import mimetypes
import posixpath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from connectors.wordpress.errors import MirrorFailed, WordPressError
from connectors.wordpress.guard import GuardedTransport, OutboundGuard

if TYPE_CHECKING:
    from syncjobs.engine.plan import Write

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


class FileMirror:
    """The files of one sync's records: downloaded once per changed URL, kept otherwise."""

    def __init__(self, organisation_id):
        self.organisation_id = organisation_id
        self._downloader: ImageDownloader | None = None

    def files(self, entity_type: str, write: Write, file_fields) -> dict:
        """{file field: stored name ("" without a URL)} for the write's mirrored fields."""
        files = {}
        for url_field, file_field in file_fields:
            url = write.mapped.values.get(url_field) or ""
            existing = write.existing
            if not url:
                files[file_field] = ""
                continue
            if (
                existing is not None
                and existing.files.get(file_field)
                and existing.files.get(url_field) == url
            ):
                files[file_field] = existing.files[file_field]
                continue
            if self._downloader is None:
                self._downloader = ImageDownloader()
            content, extension = self._downloader.fetch(url)
            folder = f"mirrored/{entity_type}s/{self.organisation_id}"
            name = f"{folder}/{write.mapped.external_id}{extension}"
            files[file_field] = default_storage.save(name, ContentFile(content))
        return files

    def close(self) -> None:
        if self._downloader is not None:
            self._downloader.client.close()


class ImageDownloader:
    """Downloads files to mirror through the SSRF guard, size- and type-checked."""

    def __init__(self, *, max_bytes: int | None = None, timeout: float = 20.0):
        self.guard = OutboundGuard(allow_private=settings.WORDPRESS_ALLOW_PRIVATE_HOSTS)
        self.client = httpx.Client(
            transport=GuardedTransport(self.guard),
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,
            headers={"User-Agent": "AssociationPlatform/1.0 (image mirror)"},
        )
        self.max_bytes = max_bytes or getattr(settings, "SYNC_MIRROR_MAX_BYTES", MIRROR_MAX_BYTES)

    def fetch(self, url: str) -> tuple[bytes, str]:
        prefix = f"the image {url[:300]} could not be downloaded: "
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
        except ValueError as exc:
            # httpx decodes a redirect's Location even when not following it: a host that is
            # not valid IDNA (xn--localhost-) fails that one record, never the whole sync.
            raise MirrorFailed(
                prefix + f"the site redirected it to an invalid URL ({exc})."
            ) from None

    def _too_big(self, size: int) -> str:
        return f"it is larger than the limit of {self.max_bytes:,} bytes ({size:,} bytes or more)."

    def _check_type(self, prefix: str, body: bytes, content_type: str, url: str) -> str:
        for mime, signatures in IMAGE_SIGNATURES.items():
            if any(body.startswith(sig) for sig in signatures):
                if mime == "image/webp" and body[8:12] != b"WEBP":
                    continue
                return mimetypes.guess_extension(mime) or ".img"
        shown = content_type or "no content type"
        name = posixpath.basename(urlsplit(url).path) or url
        raise MirrorFailed(prefix + f"{name} is not a PNG, JPEG, GIF or WebP image ({shown}).")
