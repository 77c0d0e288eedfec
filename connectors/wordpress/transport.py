"""One logical request to a WordPress site over the SSRF guard: the key only to the site's
exact origin, redirects followed hop by hop (each hop checked, never for writes), the body read
up to the size cap, and transport failures turned into typed errors (contract §3, §12)."""

from __future__ import annotations

import json
import logging
import ssl
import time

import httpx

from . import contract
from .answers import excerpt, origin
from .errors import (
    InvalidResponse,
    RedirectRefused,
    RequestTimedOut,
    ResponseTooLarge,
    SiteUnreachable,
    TLSFailure,
    WordPressError,
)
from .guard import OutboundGuard

logger = logging.getLogger("connectors.wordpress")

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
#: How much of an oversized body is kept to identify the record inside it.
PREFIX_BYTES = 64 * 1024


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


class Transport:
    """Sends one site's requests and counts them (``request_count``, redirect hops included).
    It holds the sync key and is the only place that puts it on a request."""

    def __init__(
        self,
        http: httpx.Client,
        guard: OutboundGuard,
        *,
        api_key: str,
        site_origin: tuple,
        site_host: str,
        max_response_bytes: int,
    ) -> None:
        self.http = http
        self.guard = guard
        self.__key = api_key
        self.origin = site_origin
        self.site_host = site_host
        self.max_response_bytes = max_response_bytes
        self.request_count = 0

    def scrub(self, text: str) -> str:
        """``text`` with the sync key replaced (sites can echo anything back)."""
        if self.__key and len(self.__key) >= 4:
            text = text.replace(self.__key, "[sync key]")
        return text

    def send(
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
            shown = str(current)
            started = time.monotonic()
            response = self._exchange(method, current, headers, content, with_key)
            try:
                target = self._redirect_target(response, current, method, follow)
                if target is None:
                    body = self.read_capped(response, shown)
            finally:
                response.close()
            if target is None:
                logger.debug(
                    "%s %s -> %s (%d bytes, %.3fs)",
                    method,
                    shown,
                    response.status_code,
                    len(body),
                    time.monotonic() - started,
                )
                return response, body, shown
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

    def _exchange(
        self, method: str, url: httpx.URL, headers: dict, content: bytes | None, with_key: bool
    ) -> httpx.Response:
        """One hop: the guard's check, the request sent, its answer's head (body streamed)."""
        self.guard.check_url(url)
        hop_headers = dict(headers)
        # The key goes only to the exact origin of the site URL: another host, port or
        # scheme (a downgrade to http, or a different service on :8443) never sees it.
        if with_key and origin(url) == self.origin:
            hop_headers[contract.KEY_HEADER] = self.__key
        request = self.http.build_request(method, url, headers=hop_headers, content=content)
        shown = str(url)
        self.request_count += 1
        try:
            return self.http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise self.timeout_error(exc, shown) from None
        except httpx.ConnectError as exc:
            raise self.connect_error(exc, shown) from None
        except httpx.RemoteProtocolError as exc:
            if "location header" in str(exc):
                # httpx parses Location even when not following: a broken redirect.
                raise InvalidResponse(
                    f"The site redirected {shown} to an invalid URL.", url=shown
                ) from None
            raise self._reset_error(exc, url) from None
        except (httpx.InvalidURL, ValueError) as exc:
            # httpx builds the next request of a redirect even when not following it;
            # a Location whose host is not valid IDNA (xn--localhost-) fails right there.
            raise InvalidResponse(
                f"The site redirected {shown} to an invalid URL "
                f"({excerpt(str(exc), 100, self.scrub)}).",
                url=shown,
            ) from None
        except httpx.TransportError as exc:
            raise self._reset_error(exc, url) from None

    @staticmethod
    def _reset_error(exc: Exception, url: httpx.URL) -> SiteUnreachable:
        return SiteUnreachable(
            f"The connection to {url.raw_host.decode()} was closed or reset before "
            f"an answer arrived ({type(exc).__name__}).",
            url=str(url),
        )

    def _redirect_target(
        self, response: httpx.Response, current: httpx.URL, method: str, follow: bool
    ) -> httpx.URL | None:
        """Where a redirect points (None: not a redirect); refused for writes (§12)."""
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or not location:
            return None
        shown = str(current)
        try:
            target = current.join(location)
        except (httpx.InvalidURL, ValueError, TypeError):
            raise InvalidResponse(
                f"The site redirected to an invalid URL ({excerpt(location, 100, self.scrub)!r}).",
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
        return target

    def read_capped(self, response: httpx.Response, url: str) -> bytes:
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
            raise self.timeout_error(exc, url) from None
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

    def timeout_error(self, exc: httpx.TimeoutException, url: str) -> RequestTimedOut:
        timeout = self.http.timeout
        if isinstance(exc, httpx.ConnectTimeout):
            return RequestTimedOut(
                f"Connecting to {self.site_host} timed out after {timeout.connect:g} s "
                "(host down, or a firewall drops the connection).",
                url=url,
            )
        return RequestTimedOut(
            f"The site did not answer within {timeout.read:g} s. It may be overloaded; "
            "a smaller page size or a later retry may help.",
            url=url,
        )

    def connect_error(self, exc: httpx.ConnectError, url: str) -> WordPressError:
        cause = _tls_cause(exc)
        if cause is not None:
            detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
            detail = self.scrub(str(detail or cause))
            return TLSFailure(
                f"The secure (TLS) connection to {self.site_host} failed: {detail}. "
                "The site's HTTPS certificate is invalid, expired, self-signed or for another "
                "host name: fix the certificate on the web server.",
                url=url,
            )
        reason = self.scrub(str(exc)) or "connection failed"
        return SiteUnreachable(
            f"Could not connect to {self.site_host}: {reason}. "
            "Check the site URL and that the web server is running.",
            url=url,
        )
