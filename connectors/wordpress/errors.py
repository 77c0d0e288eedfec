"""Typed errors of the WordPress client.

Every error carries a message an organisation admin can act on (shown in the UI and the
sync log as-is), the HTTP status when there was one, and whether retrying later may help.
Messages never contain the sync key: the client scrubs it from anything it quotes.
"""

from __future__ import annotations

__all__ = [
    "PLUGIN_SETTINGS",
    "AuthenticationFailed",
    "BadRequest",
    "BlockedAddress",
    "InvalidResponse",
    "MirrorFailed",
    "PluginMissing",
    "RateLimited",
    "RecordNotFound",
    "RedirectRefused",
    "RequestTimedOut",
    "ResponseTooLarge",
    "ServerError",
    "SiteUnreachable",
    "SyncDisabled",
    "TLSFailure",
    "UnsupportedContractVersion",
    "WordPressError",
    "WriteConflict",
]

# Where an administrator finds the sync key, the API switch, the rate limit and the entity
# types: the plugin's settings page (wordpress-plugin/README.md). One spelling for every
# message, so what the admin reads matches the menu they click through.
PLUGIN_SETTINGS = "WP Admin → Settings → Association App → Sync"


class WordPressError(Exception):
    """Base class. ``str(error)`` is ``error.message``."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        url: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        # The plugin's machine-readable error code (e.g. "association_sync_invalid_key"),
        # None when the response did not come from the plugin.
        self.code = code
        # The URL of the failing request (never contains the key: the key travels in a header).
        self.url = url
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r})"


class SiteUnreachable(WordPressError):
    """DNS failure, connection refused or reset (after retries)."""

    retryable = True


class TLSFailure(WordPressError):
    """The TLS handshake failed (untrusted or expired certificate, wrong host name...)."""


class RequestTimedOut(WordPressError):
    retryable = True


class AuthenticationFailed(WordPressError):
    """401: the key is missing, wrong or was regenerated in WordPress."""


class PluginMissing(WordPressError):
    """404 on a sync route: plugin not installed/active, or rewrite rules not flushed."""


class SyncDisabled(WordPressError):
    """403 association_sync_disabled: the sync API is switched off in the plugin settings."""


class RateLimited(WordPressError):
    """429 after retries. ``retry_after`` is the site's last Retry-After in seconds (or None)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(WordPressError):
    """5xx after retries."""

    retryable = True


class InvalidResponse(WordPressError):
    """The body is not JSON, truncated, or has the wrong shape."""


class UnsupportedContractVersion(InvalidResponse):
    """ping reported a contract version this client does not speak."""


class ResponseTooLarge(WordPressError):
    """The body exceeded the size cap; reading stopped at the cap."""

    def __init__(self, message: str, *, limit: int, prefix: bytes = b"", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit
        # The first bytes of the body (up to 64 KiB), so a caller can still find out
        # which record was too large (see WordPressClient.iter_pages).
        self.prefix = prefix
        # The response headers (X-WP-Total still tells how many records the list has).
        self.headers: dict = {}


class RecordNotFound(WordPressError):
    """404 association_sync_not_found for GET/PUT {endpoint}/{id}."""


class WriteConflict(WordPressError):
    """409: the record changed in WordPress after ``if_unmodified_since``."""

    def __init__(
        self,
        message: str,
        *,
        current_record: dict | None = None,
        modified_gmt: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(message, **kwargs)
        self.current_record = current_record or {}
        self.modified_gmt = modified_gmt
        # True when an earlier attempt of the same PUT timed out (see push_record, §7.3).
        self.after_timeout = False


class BlockedAddress(WordPressError):
    """The outbound guard refused the destination (private address, bad scheme...)."""


class RedirectRefused(WordPressError):
    """A redirect that must not be followed (on PUT, too many hops)."""


class BadRequest(WordPressError):
    """Any other 4xx, with the site's message."""

    def __init__(self, message: str, *, params: dict | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        # For 400 rest_invalid_param: {param: message} as sent by the site.
        self.params = params or {}


class MirrorFailed(Exception):
    """A record's file to mirror could not be downloaded or was refused (size, type): the
    record fails, the sync goes on."""
