"""httpx client of the Association App sync API (docs/wordpress-sync-api.md, contract v1).

Plain Python, no Django: the sync engine, the diagnostics, the simulator's tests and the
benchmarks all use it. What it guarantees to callers:

- every outbound connection passes the SSRF guard (guard.py), redirects included;
- one request at a time, with a timeout, a response-size cap (10 MiB, streamed) and retries
  with exponential backoff + jitter on transient failures (§12), honouring Retry-After;
- every failure is a typed ``WordPressError`` whose message tells an admin what to do and
  never contains the sync key;
- list responses are shape-checked (items, totals) before anyone sees them.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import inspect
import json
import logging
import math
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    RedirectRefused,
    RequestTimedOut,
    ResponseTooLarge,
    ServerError,
    SiteUnreachable,
    SyncDisabled,
    TLSFailure,
    UnsupportedContractVersion,
    WordPressError,
    WriteConflict,
)
from .guard import GuardedTransport, OutboundGuard, Resolver, parse_url

__all__ = ["USER_AGENT", "Page", "WordPressClient"]

logger = logging.getLogger("connectors.wordpress")

USER_AGENT = "AssociationPlatform/1.0 (+https://github.com/association-app)"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
#: Retry-After values above this are capped (§12).
RETRY_AFTER_MAX = 300.0
#: How much of an oversized body is kept to identify the record inside it.
PREFIX_BYTES = 64 * 1024

_ITEM_HEAD = re.compile(
    rb'"items"\s*:\s*\[\s*\{\s*"id"\s*:\s*(\d+)\s*,\s*"modified_gmt"\s*:\s*"([^"]{1,40})"'
)


@dataclass
class Page:
    """One list response.

    ``request_count`` is the number of HTTP requests this page took (1 unless retries,
    redirects or per_page halving happened). ``skipped`` lists records the client could not
    download because a single record exceeded the size cap (§12): ``{"id", "modified_gmt",
    "error"}`` each; the caller reports them as failed for that record.

    ``deleted`` (contract 1.1, §5.6) is the entity type's inline deletions
    (``{"id", "deleted_gmt"}`` each) when they were asked for and the site sent them;
    ``None`` when the site did not (a 1.0 plugin): the caller then reads the deletions feed,
    as it also must when ``deleted_more`` says the list was capped.
    """

    items: list[dict]
    page: int
    per_page: int
    total: int
    total_pages: int
    request_count: int
    skipped: list[dict] = field(default_factory=list)
    deleted: list[dict] | None = None
    deleted_more: bool = False
    # Contract 1.2 (§5.7), None from an older plugin: the site's clock when it answered and
    # the change log's head; with `changes_after`, the ids it names (`changed`, None when not
    # asked or not served), where to continue, whether more follow, and where the log starts.
    server_time: datetime | None = None
    change_seq: int | None = None
    changed: list[int] | None = None
    changed_next: int | None = None
    changed_more: bool = False
    change_log_from: int = 0


@dataclass
class _Result:
    data: Any
    response: httpx.Response
    requests: int
    timed_out_before: bool = False


def _excerpt(body: bytes | str, limit: int = 200, scrub=None) -> str:
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


def _entry_problem(item: Any, stamp_key: str) -> str | None:
    """What is wrong with one entry of a list answer (a record, or a deletion with its
    `deleted_gmt`), said after its position; None when its id and time stamp are sound."""
    if not isinstance(item, dict):
        return f"is {type(item).__name__}, not an object"
    if not _is_int(item.get("id")):
        return "has no integer 'id'"
    try:
        contract.parse_gmt(item.get(stamp_key))
    except ValueError:
        return f"(id {item.get('id')}) has an invalid '{stamp_key}'"
    return None


def _origin(url: httpx.URL) -> tuple[str, bytes, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.scheme, url.raw_host.lower().rstrip(b"."), port


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tls_cause(exc: BaseException) -> BaseException | None:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return current
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "TLS" in text:
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _key_safe(method):
    """Scrub the key out of any WordPressError leaving ``method`` (the last line of defence:
    sites can echo anything back, in bodies, headers or redirect targets)."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            try:
                yield from method(self, *args, **kwargs)
            except WordPressError as exc:
                self._clean(exc)
                raise

        return generator

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except WordPressError as exc:
            self._clean(exc)
            raise

    return wrapper


class WordPressClient:
    """Client of one WordPress site. Not thread-safe: one request at a time per site (§12)."""

    def __init__(
        self,
        site_url: str,
        api_key: str,
        *,
        allow_private: bool = False,
        timeout: float = contract.READ_TIMEOUT,
        connect_timeout: float = contract.CONNECT_TIMEOUT,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_response_bytes: int = contract.MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
        retry_after_max: float = RETRY_AFTER_MAX,
        host_limiter=None,
    ) -> None:
        # parse_url raises BlockedAddress for a URL it cannot use (never an httpx or IDNA
        # exception) and gives the host in the ASCII form every request is built from. Whether
        # the address is public is asked per request (guard.check_url), so a client for a
        # refused address still exists and each caller reports the refusal where it happens.
        parsed = parse_url((site_url or "").strip().rstrip("/"), allow_private=True)
        self.site_url = str(parsed).rstrip("/")
        self._site_host = parsed.raw_host.decode("ascii")
        #: The one origin the sync key is sent to (§3): a redirect elsewhere, even to
        #: another port or scheme of the same host, is followed without the key.
        self._origin = _origin(parsed)
        self.__key = api_key or ""
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.max_response_bytes = max_response_bytes
        self.sleep = sleep
        self.request_count = 0
        self.guard = OutboundGuard(allow_private=allow_private, resolver=resolver)
        #: hostlimit.HostLimiter shared by every worker (None: no per-host limit).
        self.host_limiter = host_limiter
        self._http = httpx.Client(
            transport=transport or GuardedTransport(self.guard, verify=verify),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    # --- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> WordPressClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"<WordPressClient {self.site_url}>"

    # --- public API --------------------------------------------------------------

    def api_url(self, path: str) -> str:
        return f"{self.site_url}/{contract.API_PREFIX}{path}"

    @_key_safe
    def ping(self) -> dict:
        """GET ping (with the key); checks the contract version (§4)."""
        result = self._call("GET", self.api_url(contract.PING_ENDPOINT))
        data = result.data
        version = data.get("contract_version")
        if version != contract.CONTRACT_VERSION:
            raise UnsupportedContractVersion(
                f"The plugin speaks sync API contract version "
                f"{_excerpt(repr(version), 40, self._scrub)}; this platform supports version "
                f"{contract.CONTRACT_VERSION}. Install a plugin version that "
                "supports contract 1.",
                status_code=200,
                url=str(result.response.url),
            )
        types = data.get("entity_types")
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise InvalidResponse(
                "The plugin's ping answer has no valid entity_types list.",
                status_code=200,
                url=str(result.response.url),
            )
        return data

    @_key_safe
    def get_rest_index(self) -> dict:
        """GET {site}/wp-json/ without the key, falling back to ?rest_route=/ (§13.1)."""
        first_error: WordPressError | None = None
        for url in (f"{self.site_url}/wp-json/", f"{self.site_url}/?rest_route=/"):
            try:
                return self._call("GET", url, with_key=False, context="rest").data
            except (InvalidResponse, BadRequest) as exc:
                first_error = first_error or exc
        assert first_error is not None
        if "REST API" in first_error.message:
            raise first_error
        raise InvalidResponse(
            f"The WordPress REST API did not answer at {self.site_url}/wp-json/ "
            f"({first_error.message}) The REST API may be disabled or blocked by a security "
            "plugin or the host, or this is not a WordPress site.",
            status_code=first_error.status_code,
            url=first_error.url,
        )

    @_key_safe
    def check_reachable(self) -> float:
        """Diagnostics step 1: GET {site}/ answers at all (any HTTP status). Returns seconds.

        Raises SiteUnreachable, TLSFailure, RequestTimedOut or BlockedAddress.
        """
        started = time.monotonic()
        # A huge home page or a redirect loop is still an answer: all this step asks for.
        with contextlib.suppress(ResponseTooLarge, RedirectRefused):
            self._send("GET", f"{self.site_url}/", with_key=False, follow=True)
        return time.monotonic() - started

    @_key_safe
    def probe(self, path: str, *, with_key: bool = False, method: str = "GET") -> httpx.Response:
        """One guarded request without retries or status interpretation.

        ``path`` is relative to the site URL (``"api/v1/sync/ping"``, ``"wp-json/"``,
        ``"?rest_route=/"``). Returns the response with its (capped) body already read, so
        callers can look at ``status_code``, ``headers``, ``json()``/``text``. Transport
        failures still raise the typed errors (SiteUnreachable, TLSFailure, ...).
        """
        url = f"{self.site_url}/{path.lstrip('/')}"
        response, body, _ = self._send(method, url, with_key=with_key, follow=True)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=response.request,
        )

    @_key_safe
    def iter_pages(
        self,
        entity_type: str,
        *,
        modified_after: datetime | None = None,
        per_page: int = contract.DEFAULT_PER_PAGE,
        deleted_since: datetime | None = None,
        changes_after: int | None = None,
    ) -> Iterator[Page]:
        """Keyset paging per §5.5: yields one Page per successful list request.

        Records come in (modified_gmt, id) order; a record edited during the run moves to
        the end and is delivered again later, none is skipped. With ``deleted_since``, the
        first request also asks for the type's deletions after it (§5.6): the first page's
        ``deleted`` holds them, or is None if the site does not serve them. With
        ``changes_after``, likewise the change log's entries after that number (§5.7).
        """
        endpoint = self._endpoint(entity_type)
        if not contract.MIN_PER_PAGE <= per_page <= contract.MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {contract.MAX_PER_PAGE}")
        cursor_t = contract.format_gmt(modified_after) if modified_after else None
        cursor_id: int | None = None
        size = per_page
        page_start = self.request_count
        first = True
        while True:
            params: dict[str, Any] = {"per_page": size}
            if cursor_t is not None:
                params["modified_after"] = cursor_t
            if cursor_id is not None:
                params["after_id"] = cursor_id
            if first and deleted_since is not None:
                # Only the first request: every page would repeat the same entries.
                params[contract.DELETED_SINCE_PARAM] = contract.format_gmt(deleted_since)
            if first and changes_after is not None:
                params[contract.CHANGES_AFTER_PARAM] = changes_after
            url = self.api_url(endpoint)
            try:
                result = self._call("GET", url, params=params)
            except ResponseTooLarge as exc:
                if size > 1:
                    # §12: retry the same request with per_page halved (down to 1).
                    size = max(1, size // 2)
                    continue
                skipped = self._oversized_record(exc)
                if skipped is None or (skipped["modified_gmt"], skipped["id"]) <= (
                    cursor_t or "",
                    cursor_id or -1,
                ):
                    raise
                cursor_t, cursor_id = skipped["modified_gmt"], skipped["id"]
                total = exc.headers.get(contract.TOTAL_HEADER, "")
                total = int(total) if total.isdigit() else 0
                requests, page_start = self.request_count - page_start, self.request_count
                first = False
                yield Page([], 1, 1, total, total, requests, skipped=[skipped])
                if total <= 1:
                    return
                continue
            page = self._list_page(result, url, keyed=True)
            page.request_count = self.request_count - page_start
            page_start = self.request_count
            if page.items:
                last = page.items[-1]
                new_cursor = (last["modified_gmt"], last["id"])
                if cursor_t is not None and new_cursor <= (cursor_t, cursor_id or -1):
                    raise InvalidResponse(
                        f"The site returned {endpoint} records that do not come after the "
                        f"requested position (modified_after={cursor_t}, after_id={cursor_id}); "
                        "the plugin does not implement keyset paging (contract §5.5). "
                        "Update the Association App plugin.",
                        status_code=200,
                        url=str(result.response.url),
                    )
            if first and deleted_since is not None:
                page.deleted, page.deleted_more = self._inline_deletions(result, url)
            first = False
            yield page
            if not page.items or page.total_pages <= 1:
                return
            cursor_t, cursor_id = new_cursor
            # After a halving, grow back so one oversized record does not slow the whole run.
            size = min(per_page, size * 2)

    @_key_safe
    def fetch_changed(
        self, entity_type: str, ids: list[int], *, changes_after: int | None = None
    ) -> Page:
        """The records the change log named (§5.7): one list request for at most 100 ids,
        which also brings the next entries after ``changes_after`` when given. A record no
        longer served is simply absent from ``items``."""
        if len(ids) > contract.MAX_INCLUDE_IDS:
            raise ValueError(f"at most {contract.MAX_INCLUDE_IDS} ids per request")
        params: dict[str, Any] = {
            "per_page": contract.MAX_PER_PAGE,
            # Empty: no record, only the next entries (§5.7).
            contract.INCLUDE_PARAM: ",".join(str(self._record_id(i)) for i in ids),
        }
        if changes_after is not None:
            params[contract.CHANGES_AFTER_PARAM] = changes_after
        url = self.api_url(self._endpoint(entity_type))
        start = self.request_count
        result = self._call("GET", url, params=params)
        page = self._list_page(result, url, keyed=True)
        page.request_count = self.request_count - start
        return page

    @_key_safe
    def iter_deletions(
        self, since: datetime | None, per_page: int = contract.DEFAULT_PER_PAGE
    ) -> Iterator[Page]:
        """Deletions feed (§8), page-number paging (the feed is append-only)."""
        page_number = 1
        while True:
            params: dict[str, Any] = {"page": page_number, "per_page": per_page}
            if since is not None:
                params["since"] = contract.format_gmt(since)
            url = self.api_url(contract.DELETIONS_ENDPOINT)
            result = self._call("GET", url, params=params)
            page = self._list_page(result, url, keyed=False)
            yield page
            if not page.items or page_number >= page.total_pages:
                return
            page_number += 1

    @_key_safe
    def get_record(self, entity_type: str, record_id: int | str) -> dict:
        url = self.api_url(f"{self._endpoint(entity_type)}/{self._record_id(record_id)}")
        result = self._call("GET", url)
        self._check_record(result.data, url)
        return result.data

    @_key_safe
    def push_record(
        self,
        entity_type: str,
        record_id,
        fields: dict,
        *,
        if_unmodified_since: datetime | None = None,
    ) -> dict:
        """PUT {endpoint}/{id} (§7). Returns the updated record as WordPress renders it."""
        url = self.api_url(f"{self._endpoint(entity_type)}/{self._record_id(record_id)}")
        body = dict(fields)
        if if_unmodified_since is not None:
            body[contract.IF_UNMODIFIED_SINCE_KEY] = contract.format_gmt(if_unmodified_since)
        try:
            result = self._call("PUT", url, json_body=body)
        except WriteConflict as exc:
            # §7.3: after a timed-out attempt, a 409 whose current record already holds
            # what we sent means the first attempt went through.
            if exc.after_timeout and all(exc.current_record.get(k) == v for k, v in fields.items()):
                return exc.current_record
            raise
        self._check_record(result.data, url)
        return result.data

    @_key_safe
    def subscribe_push(self, url: str, secret: str, *, test: bool = False) -> dict:
        """POST push (§15.2): tell the plugin where to send this connector's change
        notifications and the HMAC secret to sign them with. With `test`, the plugin sends
        a test push at once and answers whether it reached `url` ("reachable", "error")."""
        body = {"url": url, "secret": secret, "test": test}
        return self._call("POST", self.api_url(contract.PUSH_ENDPOINT), json_body=body).data

    # --- internals: requests -----------------------------------------------------

    def _host_slot(self):
        if self.host_limiter is None:
            return contextlib.nullcontext()
        return self.host_limiter.slot(self._site_host)

    def _endpoint(self, entity_type: str) -> str:
        try:
            return contract.ENTITY_ENDPOINTS[entity_type]
        except KeyError:
            raise ValueError(f"unknown entity type {entity_type!r}") from None

    @staticmethod
    def _record_id(record_id) -> int:
        try:
            value = int(record_id)
        except (TypeError, ValueError):
            raise ValueError(f"record id must be a positive integer, got {record_id!r}") from None
        if value < 1:
            raise ValueError(f"record id must be a positive integer, got {record_id!r}")
        return value

    def _clean(self, exc: WordPressError) -> None:
        exc.message = self._scrub(exc.message)
        exc.args = (exc.message,)
        if exc.url:
            exc.url = self._scrub(exc.url)

    def _scrub(self, text: str) -> str:
        if self.__key and len(self.__key) >= 4:
            text = text.replace(self.__key, "[sync key]")
        return text

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay * random.uniform(0.8, 1.2)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get(contract.RETRY_AFTER_HEADER)
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            seconds = float(value)
        else:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
        return max(0.0, min(self.retry_after_max, seconds))

    @_key_safe
    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json_body: dict | None = None,
        with_key: bool = True,
        context: str = "sync",
    ) -> _Result:
        """A request with retries (§12) whose 2xx JSON object body is returned."""
        attempt = 0
        requests = 0
        timed_out_before = False
        is_put = method == "PUT"
        while True:
            before = self.request_count
            try:
                with self._host_slot():
                    response, body, final_url = self._send(
                        method,
                        url,
                        params=params,
                        json_body=json_body,
                        with_key=with_key,
                        follow=not is_put,
                    )
            except (RequestTimedOut, SiteUnreachable) as exc:
                requests += self.request_count - before
                if exc.retryable and attempt < self.max_retries:
                    timed_out_before = timed_out_before or isinstance(exc, RequestTimedOut)
                    delay = self._backoff(attempt)
                    logger.info("%s %s failed (%s); retry in %.1fs", method, url, exc, delay)
                    self.sleep(delay)
                    attempt += 1
                    continue
                if attempt:
                    exc.message = f"{exc.message} (after {attempt + 1} attempts)"
                    exc.args = (exc.message,)
                raise
            requests += self.request_count - before
            status = response.status_code
            if status in RETRYABLE_STATUSES and attempt < self.max_retries:
                retry_after = self._retry_after(response)
                # PUT is retried only when the site asks for it (§12).
                if not is_put or (status in (429, 503) and retry_after is not None):
                    delay = retry_after if retry_after is not None else self._backoff(attempt)
                    if retry_after is not None and self.host_limiter is not None:
                        # Every worker waits, not only this one (several connectors, one host).
                        self.host_limiter.back_off(self._site_host, retry_after)
                    logger.info("%s %s answered %s; retry in %.1fs", method, url, status, delay)
                    self.sleep(delay)
                    attempt += 1
                    continue
            try:
                data = self._interpret(method, final_url, response, body, context, attempt)
            except WriteConflict as exc:
                exc.after_timeout = timed_out_before
                raise
            return _Result(data, response, requests, timed_out_before)

    @_key_safe
    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json_body: dict | None = None,
        with_key: bool = True,
        follow: bool = True,
    ) -> tuple[httpx.Response, bytes, str]:
        """One logical request: guard check, redirects (max 5, each hop checked), capped body."""
        current = httpx.URL(url, params=params) if params else httpx.URL(url)
        content = None
        headers: dict[str, str] = {}
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        hops = 0
        while True:
            self.guard.check_url(current)
            hop_headers = dict(headers)
            # The key goes only to the exact origin of the site URL: another host, port or
            # scheme (a downgrade to http, or a different service on :8443) never sees it.
            if with_key and _origin(current) == self._origin:
                hop_headers[contract.KEY_HEADER] = self.__key
            request = self._http.build_request(
                method, current, headers=hop_headers, content=content
            )
            shown = str(current)
            self.request_count += 1
            started = time.monotonic()
            try:
                response = self._http.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise self._timeout_error(exc, shown) from None
            except httpx.ConnectError as exc:
                raise self._connect_error(exc, shown) from None
            except httpx.RemoteProtocolError as exc:
                if "location header" in str(exc):
                    # httpx parses Location even when not following: a broken redirect.
                    raise InvalidResponse(
                        f"The site redirected {shown} to an invalid URL.", url=shown
                    ) from None
                raise SiteUnreachable(
                    f"The connection to {current.raw_host.decode()} was closed or reset before "
                    f"an answer arrived ({type(exc).__name__}).",
                    url=shown,
                ) from None
            except (httpx.InvalidURL, ValueError) as exc:
                # httpx builds the next request of a redirect even when not following it;
                # a Location whose host is not valid IDNA (xn--localhost-) fails right there.
                raise InvalidResponse(
                    f"The site redirected {shown} to an invalid URL "
                    f"({_excerpt(str(exc), 100, self._scrub)}).",
                    url=shown,
                ) from None
            except httpx.TransportError as exc:
                raise SiteUnreachable(
                    f"The connection to {current.raw_host.decode()} was closed or reset before "
                    f"an answer arrived ({type(exc).__name__}).",
                    url=shown,
                ) from None
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    try:
                        target = current.join(location)
                    except (httpx.InvalidURL, ValueError, TypeError):
                        raise InvalidResponse(
                            f"The site redirected to an invalid URL "
                            f"({_excerpt(location, 100, self._scrub)!r}).",
                            status_code=response.status_code,
                            url=shown,
                        ) from None
                    if not follow:
                        raise RedirectRefused(
                            f"The site redirected {method} {shown} to {target} "
                            f"(HTTP {response.status_code}). Writes never follow redirects: "
                            "fix the connector's site URL (https, www) to the final address.",
                            status_code=response.status_code,
                            url=shown,
                        )
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise RedirectRefused(
                            f"Too many redirects (more than {MAX_REDIRECTS}) starting at {url}.",
                            status_code=response.status_code,
                            url=shown,
                        )
                    if response.status_code == 303:
                        method, content = "GET", None
                        headers.pop("Content-Type", None)
                    current = target
                    continue
                body = self._read_capped(response, shown)
            finally:
                response.close()
            logger.debug(
                "%s %s -> %s (%d bytes, %.3fs)",
                method,
                shown,
                response.status_code,
                len(body),
                time.monotonic() - started,
            )
            return response, body, shown

    def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        cap = self.max_response_bytes
        declared = response.headers.get("content-length")
        declared_size = int(declared) if declared and declared.isdigit() else None
        # A body announced as too large is refused after reading only its head (enough to
        # name the record inside, see iter_pages); others are cut off at the cap.
        stop_at = PREFIX_BYTES if declared_size is not None and declared_size > cap else cap
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > stop_at:
                    break
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc, url) from None
        except httpx.TransportError as exc:
            raise SiteUnreachable(
                "The connection was closed before the whole response arrived "
                f"({type(exc).__name__}, {size:,} bytes received).",
                url=url,
            ) from None
        if size > cap or (declared_size is not None and declared_size > cap):
            shown = f"{declared_size:,}" if declared_size is not None else f"more than {cap:,}"
            error = ResponseTooLarge(
                f"The site's response is {shown} bytes, over the {cap:,}-byte limit; "
                "reading stopped.",
                limit=cap,
                prefix=b"".join(chunks)[:PREFIX_BYTES],
                status_code=response.status_code,
                url=url,
            )
            error.headers = response.headers
            raise error
        return b"".join(chunks)

    def _timeout_error(self, exc: httpx.TimeoutException, url: str) -> RequestTimedOut:
        timeout = self._http.timeout
        if isinstance(exc, httpx.ConnectTimeout):
            return RequestTimedOut(
                f"Connecting to {self._site_host} timed out after {timeout.connect:g} s "
                "(host down, or a firewall drops the connection).",
                url=url,
            )
        return RequestTimedOut(
            f"The site did not answer within {timeout.read:g} s. It may be overloaded; "
            "a smaller page size or a later retry may help.",
            url=url,
        )

    def _connect_error(self, exc: httpx.ConnectError, url: str) -> WordPressError:
        cause = _tls_cause(exc)
        if cause is not None:
            detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
            detail = self._scrub(str(detail or cause))
            return TLSFailure(
                f"The secure (TLS) connection to {self._site_host} failed: {detail}. "
                "The site's HTTPS certificate is invalid, expired, self-signed or for another "
                "host name: fix the certificate on the web server.",
                url=url,
            )
        reason = self._scrub(str(exc)) or "connection failed"
        return SiteUnreachable(
            f"Could not connect to {self._site_host}: {reason}. "
            "Check the site URL and that the web server is running.",
            url=url,
        )

    # --- internals: interpreting responses ---------------------------------------

    def _interpret(
        self,
        method: str,
        url: str,
        response: httpx.Response,
        body: bytes,
        context: str,
        attempt: int,
    ) -> Any:
        status = response.status_code
        data, parse_error = self._parse_json(body, self._scrub)
        where = f"{method} {url}"
        if 200 <= status < 300:
            if parse_error is not None:
                raise InvalidResponse(
                    self._scrub(f"The site's answer to {where} is not valid JSON: {parse_error}."),
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

        error = data if isinstance(data, dict) and isinstance(data.get("code"), str) else None
        code = error["code"] if error else None
        site_message = _excerpt(str(error.get("message", "")), 300, self._scrub) if error else ""
        error_data = error.get("data") if error and isinstance(error.get("data"), dict) else {}
        raw = _excerpt(body, 200, self._scrub) or "(empty body)"
        tries = f" after {attempt + 1} attempts" if attempt else ""
        common = {"status_code": status, "code": code, "url": url}

        if context == "rest" and status != 429 and status < 500:
            raise InvalidResponse(
                f"The WordPress REST API did not answer at {url} (HTTP {status}"
                f"{', ' + code if code else ''}). The REST API may be disabled or blocked "
                "by a security plugin or the host, or this is not a WordPress site.",
                **common,
            )
        if status == 401:
            if code == contract.ERROR_MISSING_KEY and _origin(response.request.url) != self._origin:
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
                    f"({raw!r}). HTTP authentication or a security plugin protects the site; "
                    "allow requests to /api/v1/sync/."
                )
            raise AuthenticationFailed(msg, **common)
        if status == 403:
            if code == contract.ERROR_DISABLED:
                raise SyncDisabled(
                    "The sync API is switched off in the plugin settings. Enable it in "
                    f"{PLUGIN_SETTINGS}.",
                    **common,
                )
            raise BadRequest(
                f"The site refused the request (HTTP 403{', ' + code if code else ''}): "
                f"{site_message or raw}. A firewall or security plugin may block it.",
                **common,
            )
        if status == 404:
            if code == contract.ERROR_NOT_FOUND:
                raise RecordNotFound(
                    f"The record does not exist in WordPress any more ({site_message or url}).",
                    **common,
                )
            if code == contract.ERROR_NO_ROUTE:
                raise PluginMissing(
                    f"WordPress has no sync route for {url} (rest_no_route). The Association App "
                    "plugin is not active, is outdated, or this entity type is disabled in "
                    f"{PLUGIN_SETTINGS}.",
                    **common,
                )
            raise PluginMissing(
                f"The Association App plugin did not answer at {url} (HTTP 404 without a plugin "
                "response). Either the plugin is not installed or activated, or the permalinks "
                "were not refreshed since it was activated: in WP Admin open Settings → "
                "Permalinks and click Save, then retry.",
                **common,
            )
        if status == 409:
            current = error_data.get("current") if isinstance(error_data, dict) else None
            raise WriteConflict(
                "The record was changed in WordPress after the platform last read it "
                f"(WordPress has modified_gmt {error_data.get('modified_gmt', '?')}). "
                "Nothing was written.",
                current_record=current if isinstance(current, dict) else {},
                modified_gmt=error_data.get("modified_gmt"),
                **common,
            )
        if status == 429:
            retry_after = self._retry_after(response)
            raise RateLimited(
                f"The site kept rate-limiting the platform (HTTP 429{tries}). Raise the plugin's "
                f"rate limit in {PLUGIN_SETTINGS}, or sync less often.",
                retry_after=retry_after,
                **common,
            )
        if status >= 500:
            detail = f"{code}: {site_message}" if error else raw
            raise ServerError(
                f"The site had a server error (HTTP {status}{tries}): {detail}. Check the "
                "WordPress/PHP error log or the host's status; the sync will retry later.",
                **common,
            )
        if status == 400:
            params = error_data.get("params") if isinstance(error_data, dict) else None
            params = params if isinstance(params, dict) else {}
            details = _excerpt("; ".join(f"{k}: {v}" for k, v in params.items()), 500, self._scrub)
            raise BadRequest(
                f"The site refused the request as invalid ({code or 'HTTP 400'}): "
                f"{details or site_message or raw}.",
                params=params,
                **common,
            )
        if 400 <= status < 500:
            raise BadRequest(
                f"The site refused the request (HTTP {status}"
                f"{', ' + code if code else ''}): {site_message or raw}.",
                **common,
            )
        raise InvalidResponse(
            f"Unexpected HTTP {status} from {where}: {raw}.",
            **common,
        )

    @staticmethod
    def _parse_json(body: bytes, scrub=None) -> tuple[Any, str | None]:
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
                return None, f"it is an HTML page ({_excerpt(body, 120, scrub)!r})"
            # exc.pos counts characters, not bytes. An error in the last few characters is
            # the end of a cut body: after a complete value, or inside a cut `false`/`null`.
            if exc.msg.startswith("Unterminated") or exc.pos >= len(text.rstrip()) - 5:
                return None, f"the body is truncated (ends after {len(body):,} bytes)"
            return None, f"{exc.msg} at character {exc.pos}"

    def _list_page(self, result: _Result, url: str, *, keyed: bool) -> Page:
        data = result.data

        def bad(reason: str) -> InvalidResponse:
            return InvalidResponse(
                f"The site's list answer for {url} has the wrong shape: {reason}.",
                status_code=result.response.status_code,
                url=str(result.response.url),
            )

        items = data.get("items")
        if not isinstance(items, list):
            raise bad(f"'items' is {type(items).__name__}, not a list")
        numbers = {}
        for key in ("page", "per_page", "total", "total_pages"):
            value = data.get(key)
            if not _is_int(value) or value < 0:
                raise bad(f"'{key}' is {value!r}, not a non-negative integer")
            numbers[key] = value
        per_page, total, total_pages = numbers["per_page"], numbers["total"], numbers["total_pages"]
        if per_page < 1:
            raise bad(f"'per_page' is {per_page}")
        if total_pages != math.ceil(total / per_page):
            raise bad(
                f"total {total} and total_pages {total_pages} disagree for per_page {per_page}"
            )
        if len(items) > per_page:
            raise bad(f"{len(items)} items for per_page {per_page}")
        if len(items) > total:
            raise bad(f"{len(items)} items but total is {total}")
        for header, key in (
            (contract.TOTAL_HEADER, "total"),
            (contract.TOTAL_PAGES_HEADER, "total_pages"),
        ):
            value = result.response.headers.get(header)
            if value is not None and value.strip() != str(numbers[key]):
                raise bad(f"header {header}: {value} differs from body {key} {numbers[key]}")
        stamp_key = "modified_gmt" if keyed else "deleted_gmt"
        for index, item in enumerate(items):
            problem = _entry_problem(item, stamp_key)
            if problem:
                raise bad(f"item {index} {problem}")
            if not keyed and not isinstance(item.get("entity_type"), str):
                raise bad(f"item {index} has no 'entity_type'")
        page = Page(
            items=items,
            page=numbers["page"],
            per_page=per_page,
            total=total,
            total_pages=total_pages,
            request_count=result.requests,
        )
        if keyed:
            self._change_capture(data, page, bad)
        return page

    @staticmethod
    def _change_capture(data: dict, page: Page, bad) -> None:
        """The contract 1.2 keys of a list answer (§5.7); absent from an older plugin."""
        stamp = data.get(contract.SERVER_TIME_KEY)
        if stamp is not None:
            try:
                page.server_time = contract.parse_gmt(stamp)
            except (TypeError, ValueError):
                raise bad(f"'server_time_gmt' is {stamp!r}, not a GMT time") from None
        for key, attr in (
            (contract.CHANGE_SEQ_KEY, "change_seq"),
            (contract.CHANGED_NEXT_KEY, "changed_next"),
            (contract.CHANGE_LOG_FROM_KEY, "change_log_from"),
        ):
            value = data.get(key)
            if value is None:
                continue
            if not _is_int(value) or value < 0:
                raise bad(f"'{key}' is {value!r}, not a non-negative integer")
            setattr(page, attr, value)
        changed = data.get(contract.CHANGED_KEY)
        if changed is None:
            return
        if not isinstance(changed, list) or not all(_is_int(i) and i > 0 for i in changed):
            raise bad("'changed' is not a list of record ids")
        if len(changed) > contract.MAX_CHANGED_IDS:
            raise bad(f"'changed' has {len(changed)} ids, more than {contract.MAX_CHANGED_IDS}")
        more = data.get(contract.CHANGED_MORE_KEY, False)
        if not isinstance(more, bool):
            raise bad(f"'changed_more' is {more!r}, not true or false")
        if page.changed_next is None:
            raise bad("'changed' comes without 'changed_next'")
        page.changed, page.changed_more = changed, more

    def _inline_deletions(self, result: _Result, url: str) -> tuple[list[dict] | None, bool]:
        """A list answer's `deleted` / `deleted_more` (§5.6): (None, False) when the site
        sent none (a contract 1.0 plugin ignores `deleted_since`)."""
        data = result.data
        if contract.INLINE_DELETIONS_KEY not in data:
            return None, False

        def bad(reason: str) -> InvalidResponse:
            return InvalidResponse(
                f"The site's list answer for {url} has the wrong shape: {reason}.",
                status_code=result.response.status_code,
                url=str(result.response.url),
            )

        deleted = data[contract.INLINE_DELETIONS_KEY]
        more = data.get(contract.INLINE_DELETIONS_MORE_KEY, False)
        if not isinstance(deleted, list):
            raise bad(f"'deleted' is {type(deleted).__name__}, not a list")
        if not isinstance(more, bool):
            raise bad(f"'deleted_more' is {more!r}, not true or false")
        if len(deleted) > contract.MAX_INLINE_DELETIONS:
            raise bad(
                f"'deleted' has {len(deleted)} entries, more than the "
                f"{contract.MAX_INLINE_DELETIONS} allowed"
            )
        for index, entry in enumerate(deleted):
            problem = _entry_problem(entry, "deleted_gmt")
            if problem:
                raise bad(f"deleted entry {index} {problem}")
        return deleted, more

    def _check_record(self, data: dict, url: str) -> None:
        if not _is_int(data.get("id")):
            raise InvalidResponse(
                f"The site's answer for {url} is not a record (no integer 'id').", url=url
            )

    def _oversized_record(self, exc: ResponseTooLarge) -> dict | None:
        """id + modified_gmt of the single record in an oversized per_page=1 answer."""
        match = _ITEM_HEAD.search(exc.prefix)
        if not match:
            return None
        stamp = match.group(2).decode("ascii", errors="replace")
        try:
            contract.parse_gmt(stamp)
        except ValueError:
            return None
        return {
            "id": int(match.group(1)),
            "modified_gmt": stamp,
            "error": f"The record is larger than the {exc.limit:,}-byte response limit; skipped.",
        }
