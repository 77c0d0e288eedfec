"""httpx client of the Association App sync API (docs/wordpress-sync-api.md, contract v1):
the public calls the sync engine, the diagnostics and push make on one WordPress site.

Plain Python, no Django: the sync engine, the diagnostics, the simulator's tests and the
benchmarks all use it. What it guarantees to callers:

- every outbound connection passes the SSRF guard (guard.py), redirects included
  (transport.py);
- one request at a time, with a timeout, a response-size cap (10 MiB, streamed), paced to
  the rate limit the site announces, and retries with exponential backoff + jitter on
  transient failures (§12), honouring Retry-After (retry.py, pacing.py);
- every failure is a typed ``WordPressError`` whose message tells an admin what to do and
  never contains the sync key (answers.py);
- list responses are shape-checked (items, totals) before anyone sees them (pages.py).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx

from . import contract
from .answers import Interpreter, excerpt, origin
from .errors import (
    BadRequest,
    InvalidResponse,
    RedirectRefused,
    ResponseTooLarge,
    UnsupportedContractVersion,
    WordPressError,
    WriteConflict,
)
from .guard import GuardedTransport, OutboundGuard, Resolver, parse_url
from .pacing import Pacer
from .pages import Page, Result, check_record, deletion_pages, keyset_pages, list_page
from .retry import RETRY_AFTER_MAX, Requester, RetryPolicy
from .transport import Transport

__all__ = ["USER_AGENT", "Page", "WordPressClient"]

USER_AGENT = "AssociationPlatform/1.0 (+https://github.com/association-app)"


def _endpoint(entity_type: str) -> str:
    try:
        return contract.ENTITY_ENDPOINTS[entity_type]
    except KeyError:
        raise ValueError(f"unknown entity type {entity_type!r}") from None


def _record_id(record_id) -> int:
    try:
        value = int(record_id)
    except (TypeError, ValueError):
        raise ValueError(f"record id must be a positive integer, got {record_id!r}") from None
    if value < 1:
        raise ValueError(f"record id must be a positive integer, got {record_id!r}")
    return value


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
        pacer: Pacer | None = None,
    ) -> None:
        # parse_url raises BlockedAddress for a URL it cannot use (never an httpx or IDNA
        # exception) and gives the host in the ASCII form every request is built from. Whether
        # the address is public is asked per request (guard.check_url), so a client for a
        # refused address still exists and each caller reports the refusal where it happens.
        parsed = parse_url((site_url or "").strip().rstrip("/"), allow_private=True)
        self.site_url = str(parsed).rstrip("/")
        self.guard = OutboundGuard(allow_private=allow_private, resolver=resolver)
        self._http = httpx.Client(
            transport=transport or GuardedTransport(self.guard, verify=verify),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self._transport = Transport(
            self._http,
            self.guard,
            api_key=api_key or "",
            # The one origin the sync key is sent to (§3): a redirect elsewhere, even to
            # another port or scheme of the same host, is followed without the key.
            site_origin=origin(parsed),
            site_host=parsed.raw_host.decode("ascii"),
            max_response_bytes=max_response_bytes,
        )
        #: Pacing to the site's announced rate limit: the job page shows its limit and wait.
        self.pacer = pacer or Pacer(sleep=sleep)
        self.policy = RetryPolicy(max_retries, backoff_base, backoff_max, retry_after_max)
        self._requester = Requester(
            self._transport,
            self.policy,
            sleep=sleep,
            host_limiter=host_limiter,
            pacer=self.pacer,
        )
        self._interpreter = Interpreter(
            self.site_url, self._transport.origin, self._scrub, self.policy.retry_after
        )

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (retries and redirect hops included)."""
        return self._transport.request_count

    @property
    def sleep(self) -> Callable[[float], None]:
        return self._requester.sleep

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
                f"{excerpt(repr(version), 40, self._scrub)}; this platform supports version "
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
            self._transport.send("GET", f"{self.site_url}/", with_key=False, follow=True)
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
        response, body, _ = self._transport.send(method, url, with_key=with_key, follow=True)
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
        yield from keyset_pages(
            self,
            _endpoint(entity_type),
            modified_after=modified_after,
            per_page=per_page,
            deleted_since=deleted_since,
            changes_after=changes_after,
        )

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
            contract.INCLUDE_PARAM: ",".join(str(_record_id(i)) for i in ids),
        }
        if changes_after is not None:
            params[contract.CHANGES_AFTER_PARAM] = changes_after
        url = self.api_url(_endpoint(entity_type))
        start = self.request_count
        result = self._call("GET", url, params=params)
        page = list_page(result, url, keyed=True)
        page.request_count = self.request_count - start
        return page

    @_key_safe
    def iter_deletions(
        self, since: datetime | None, per_page: int = contract.DEFAULT_PER_PAGE
    ) -> Iterator[Page]:
        """Deletions feed (§8), page-number paging (the feed is append-only)."""
        yield from deletion_pages(self, since, per_page)

    @_key_safe
    def get_record(self, entity_type: str, record_id: int | str) -> dict:
        url = self.api_url(f"{_endpoint(entity_type)}/{_record_id(record_id)}")
        result = self._call("GET", url)
        check_record(result.data, url)
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
        url = self.api_url(f"{_endpoint(entity_type)}/{_record_id(record_id)}")
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
        check_record(result.data, url)
        return result.data

    @_key_safe
    def subscribe_push(self, url: str, secret: str, *, test: bool = False) -> dict:
        """POST push (§15.2): tell the plugin where to send this connector's change
        notifications and the HMAC secret to sign them with. With `test`, the plugin sends
        a test push at once and answers whether it reached `url` ("reachable", "error")."""
        body = {"url": url, "secret": secret, "test": test}
        return self._call("POST", self.api_url(contract.PUSH_ENDPOINT), json_body=body).data

    # --- internals ---------------------------------------------------------------

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
    ) -> Result:
        """A request with pacing and retries (§12) whose 2xx JSON object body is returned."""
        sent = self._requester.send(
            method,
            url,
            params=params,
            json_body=json_body,
            with_key=with_key,
            follow=method != "PUT",
        )
        try:
            data = self._interpreter.interpret(
                method, sent.url, sent.response, sent.body, context, sent.attempt
            )
        except WriteConflict as exc:
            exc.after_timeout = sent.timed_out_before
            raise
        return Result(data, sent.response, sent.requests, sent.timed_out_before)

    def _clean(self, exc: WordPressError) -> None:
        exc.message = self._scrub(exc.message)
        exc.args = (exc.message,)
        if exc.url:
            exc.url = self._scrub(exc.url)

    def _scrub(self, text: str) -> str:
        return self._transport.scrub(text)
