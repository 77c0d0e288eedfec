"""What a sync API answer means: its JSON decoded, and an HTTP error turned into the typed
``WordPressError`` whose message tells an admin what to do (contract §2.4, §11)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from . import contract
from .errors import (
    PLUGIN_SETTINGS,
    AuthenticationFailed,
    BadRequest,
    InvalidResponse,
    PluginMissing,
    RateLimited,
    RecordNotFound,
    ServerError,
    SyncDisabled,
    WriteConflict,
)

Scrub = Callable[[str], str]


def excerpt(body: bytes | str, limit: int = 200, scrub: Scrub | None = None) -> str:
    """The first ``limit`` characters, whitespace collapsed. ``scrub`` runs BEFORE the cut,
    on a window long enough to hold any key starting inside the excerpt, so a key that
    straddles the cut cannot leak as a prefix."""
    window = (limit + 256) * 4
    text = body[:window]
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if scrub is not None:
        text = scrub(text)
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def origin(url: httpx.URL) -> tuple[str, bytes, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.raw_host.lower().rstrip(b"."), port


def parse_json(body: bytes, scrub: Scrub | None = None) -> tuple[Any, str | None]:
    """(decoded body, None), or (None, why it is not JSON in words)."""
    if not body.strip():
        return None, "the body is empty"
    try:
        # orjson: a page of 100 records decodes in a third of the standard library's
        # time (every page of every sync). Integers beyond 64 bits come back as floats,
        # which the page and field checks refuse as not whole numbers.
        return orjson.loads(body), None
    except orjson.JSONDecodeError:
        # The standard library says what is wrong, and reads what orjson refuses but it
        # accepts (a lone UTF-16 surrogate, NaN): those fail their field, not the page.
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"the body is not UTF-8 (byte {exc.start})"
    try:
        return json.loads(text), None
    except RecursionError:
        return None, "the JSON is nested too deeply to be a plugin answer"
    except json.JSONDecodeError as exc:
        head = body.lstrip()[:15].lower()
        if head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<")):
            return None, f"it is an HTML page ({excerpt(body, 120, scrub)!r})"
        # exc.pos counts characters, not bytes. An error in the last few characters is
        # the end of a cut body: after a complete value, or inside a cut `false`/`null`.
        if exc.msg.startswith("Unterminated") or exc.pos >= len(text.rstrip()) - 5:
            return None, f"the body is truncated (ends after {len(body):,} bytes)"
        return None, f"{exc.msg} at character {exc.pos}"


class _Answer:
    """One non-2xx answer, read once: its status, the plugin's error object if any, and the
    quotable (scrubbed) parts every message draws from."""

    def __init__(self, data: Any, body: bytes, status: int, url: str, scrub: Scrub) -> None:
        error = data if isinstance(data, dict) and isinstance(data.get("code"), str) else None
        self.status = status
        self.code = error["code"] if error else None
        self.error = error
        self.site_message = excerpt(str(error.get("message", "")), 300, scrub) if error else ""
        data_field = error.get("data") if error else None
        self.data = data_field if isinstance(data_field, dict) else {}
        self.raw = excerpt(body, 200, scrub) or "(empty body)"
        self.common = {"status_code": status, "code": self.code, "url": url}

    @property
    def code_suffix(self) -> str:
        return f", {self.code}" if self.code else ""


class Interpreter:
    """Turns one site's answers into data or typed errors (it knows the site's URL and
    origin for the messages, and how to scrub the key out of quoted text)."""

    def __init__(self, site_url: str, site_origin: tuple, scrub: Scrub, retry_after) -> None:
        self.site_url = site_url
        self.site_origin = site_origin
        self.scrub = scrub
        #: response -> seconds or None (the retry policy's Retry-After reading).
        self.retry_after = retry_after

    def interpret(
        self,
        method: str,
        url: str,
        response: httpx.Response,
        body: bytes,
        context: str,
        attempt: int,
    ) -> Any:
        """The JSON object of a 2xx answer; raises the typed error of anything else."""
        status = response.status_code
        data, parse_error = parse_json(body, self.scrub)
        where = f"{method} {url}"
        if 200 <= status < 300:
            return self._success(data, parse_error, where, status, url)
        answer = _Answer(data, body, status, url, self.scrub)
        tries = f" after {attempt + 1} attempts" if attempt else ""
        if context == "rest" and status != 429 and status < 500:
            raise InvalidResponse(
                f"The WordPress REST API did not answer at {url} (HTTP {status}"
                f"{answer.code_suffix}). The REST API may be disabled or blocked "
                "by a security plugin or the host, or this is not a WordPress site.",
                **answer.common,
            )
        if status == 401:
            raise self._unauthorized(answer, response, url)
        if status == 403:
            raise self._forbidden(answer)
        if status == 404:
            raise self._not_found(answer, url)
        if status == 409:
            raise self._conflict(answer)
        if status == 429:
            raise RateLimited(
                f"The site kept rate-limiting the platform (HTTP 429{tries}). Raise the plugin's "
                f"rate limit in {PLUGIN_SETTINGS}, or sync less often.",
                retry_after=self.retry_after(response),
                **answer.common,
            )
        if status >= 500:
            detail = f"{answer.code}: {answer.site_message}" if answer.error else answer.raw
            raise ServerError(
                f"The site had a server error (HTTP {status}{tries}): {detail}. Check the "
                "WordPress/PHP error log or the host's status; the sync will retry later.",
                **answer.common,
            )
        if 400 <= status < 500:
            raise self._bad_request(answer)
        raise InvalidResponse(
            f"Unexpected HTTP {status} from {where}: {answer.raw}.", **answer.common
        )

    def _success(self, data, parse_error, where: str, status: int, url: str) -> dict:
        if parse_error is not None:
            raise InvalidResponse(
                self.scrub(f"The site's answer to {where} is not valid JSON: {parse_error}."),
                status_code=status,
                url=url,
            )
        if not isinstance(data, dict):
            raise InvalidResponse(
                f"The site's answer to {where} is JSON but not an object "
                f"(got {type(data).__name__}).",
                status_code=status,
                url=url,
            )
        return data

    def _unauthorized(self, answer: _Answer, response: httpx.Response, url: str):
        code = answer.code
        if code == contract.ERROR_MISSING_KEY and origin(response.request.url) != self.site_origin:
            msg = (
                f"The site redirected the request to {url}, another address (scheme, host "
                f"or port) than the connector's site URL {self.site_url}, so the sync key "
                "was not sent: it only ever goes to the site URL's exact origin. Set the "
                "connector's site URL to the address the site redirects to."
            )
        elif code == contract.ERROR_MISSING_KEY:
            msg = (
                f"The site says no sync API key was sent. Save the key from "
                f"{PLUGIN_SETTINGS} in this connector; if it is set, a proxy or "
                "firewall in front of WordPress strips the X-Association-Sync-Key header."
            )
        elif code == contract.ERROR_INVALID_KEY:
            msg = (
                "The site rejected the sync API key (it was probably regenerated or "
                f"mistyped). Generate a new key in {PLUGIN_SETTINGS} (WordPress shows a key "
                "only once) and save it in this connector's settings."
            )
        else:
            msg = (
                f"The site answered 401 Unauthorized, but not from the Association App plugin "
                f"({answer.raw!r}). HTTP authentication or a security plugin protects the site; "
                "allow requests to /api/v1/sync/."
            )
        return AuthenticationFailed(msg, **answer.common)

    @staticmethod
    def _forbidden(answer: _Answer):
        if answer.code == contract.ERROR_DISABLED:
            return SyncDisabled(
                "The sync API is switched off in the plugin settings. Enable it in "
                f"{PLUGIN_SETTINGS}.",
                **answer.common,
            )
        return BadRequest(
            f"The site refused the request (HTTP 403{answer.code_suffix}): "
            f"{answer.site_message or answer.raw}. A firewall or security plugin may block it.",
            **answer.common,
        )

    @staticmethod
    def _not_found(answer: _Answer, url: str):
        if answer.code == contract.ERROR_NOT_FOUND:
            return RecordNotFound(
                f"The record does not exist in WordPress any more ({answer.site_message or url}).",
                **answer.common,
            )
        if answer.code == contract.ERROR_NO_ROUTE:
            return PluginMissing(
                f"WordPress has no sync route for {url} (rest_no_route). The Association App "
                "plugin is not active, is outdated, or this entity type is disabled in "
                f"{PLUGIN_SETTINGS}.",
                **answer.common,
            )
        return PluginMissing(
            f"The Association App plugin did not answer at {url} (HTTP 404 without a plugin "
            "response). Either the plugin is not installed or activated, or the permalinks "
            "were not refreshed since it was activated: in WP Admin open Settings → "
            "Permalinks and click Save, then retry.",
            **answer.common,
        )

    @staticmethod
    def _conflict(answer: _Answer):
        current = answer.data.get("current")
        return WriteConflict(
            "The record was changed in WordPress after the platform last read it "
            f"(WordPress has modified_gmt {answer.data.get('modified_gmt', '?')}). "
            "Nothing was written.",
            current_record=current if isinstance(current, dict) else {},
            modified_gmt=answer.data.get("modified_gmt"),
            **answer.common,
        )

    def _bad_request(self, answer: _Answer):
        if answer.status == 400:
            params = answer.data.get("params")
            params = params if isinstance(params, dict) else {}
            details = excerpt("; ".join(f"{k}: {v}" for k, v in params.items()), 500, self.scrub)
            return BadRequest(
                f"The site refused the request as invalid ({answer.code or 'HTTP 400'}): "
                f"{details or answer.site_message or answer.raw}.",
                params=params,
                **answer.common,
            )
        return BadRequest(
            f"The site refused the request (HTTP {answer.status}"
            f"{answer.code_suffix}): {answer.site_message or answer.raw}.",
            **answer.common,
        )
