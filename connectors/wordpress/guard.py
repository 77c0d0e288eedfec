"""Outbound (SSRF) guard for connector URLs.

Site URLs are typed by organisation admins, so the platform must not become a proxy into
its own network. For every request (and every redirect hop) the client asks the guard for
the address to connect to:

1. the URL must be http(s), with a host and no credentials;
2. the host is resolved ONCE per client (IP literals in any spelling inet_aton accepts —
   ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` — are normalised first, because resolvers and
   browsers accept them too);
3. every resolved address must be public (not loopback, private, link-local/metadata,
   CGNAT, multicast, reserved, unspecified, IPv4-mapped/NAT64 versions of those...);
4. the connection is then made to that checked address (``PinnedBackend``), never to a fresh
   resolution, so DNS rebinding between check and connect cannot redirect it. The Host
   header and TLS SNI/certificate check still use the name.

``allow_private=True`` (settings.WORDPRESS_ALLOW_PRIVATE_HOSTS) skips step 3 for the demo and
tests; resolution and pinning still happen.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import typing
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from .errors import BlockedAddress, SiteUnreachable

__all__ = [
    "ALLOWED_SCHEMES",
    "GuardedTransport",
    "OutboundGuard",
    "PinnedBackend",
    "address_problem",
    "default_resolver",
    "parse_ip_literal",
    "parse_url",
]

ALLOWED_SCHEMES = ("http", "https")

#: A resolver takes (host, port) and returns IP address strings.
Resolver = Callable[[str, int], Iterable[str]]

# Networks that ipaddress' flags do not all cover, with the reason shown to the admin.
_EXTRA_BLOCKED = [
    (ipaddress.ip_network("100.64.0.0/10"), "carrier-grade NAT (shared) address"),
    (ipaddress.ip_network("169.254.0.0/16"), "link-local / cloud metadata address"),
    (ipaddress.ip_network("0.0.0.0/8"), "'this network' address"),
    (ipaddress.ip_network("192.0.0.0/24"), "IETF protocol assignment"),
    (ipaddress.ip_network("198.18.0.0/15"), "benchmarking address"),
    (ipaddress.ip_network("fc00::/7"), "private (unique local) address"),
    (ipaddress.ip_network("fe80::/10"), "link-local address"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "cloud metadata address"),
]
# IPv6 prefixes that embed an IPv4 address the packet may end up at.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

# Host names made only of digits, dots and hex prefixes are IPv4 literals in some spelling.
_IPV4ISH = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` spells, in any form a resolver would accept, else None."""
    host = host.strip("[]")
    if "%" in host:  # IPv6 zone id: never a valid destination for us
        raise BlockedAddress(f"The address {host!r} has a zone id; use a public host name.")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4ISH.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise BlockedAddress(f"{host!r} is not a valid address.") from None
    return None


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why connecting to ``ip`` is refused, or None if it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in _SIX_TO_FOUR:
            embedded = ip.sixtofour
        if embedded is None and ip.teredo:
            embedded = ip.teredo[1]
        if embedded is not None:
            inner = address_problem(embedded)
            return f"{inner} (embedded in an IPv6 address)" if inner else None
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_multicast:
        return "multicast address"
    for network, reason in _EXTRA_BLOCKED:
        if ip.version == network.version and ip in network:
            return reason
    if ip.is_link_local:
        return "link-local address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private network address"
    if not ip.is_global:
        return "non-public address"
    return None


def parse_url(url: str, *, allow_private: bool = False) -> httpx.URL:
    """``httpx.URL(url)``, with a precise refusal for hosts httpx cannot parse.

    httpx rejects some IP spellings that resolvers accept (``0177.0.0.1``); name the
    address they stand for instead of a bare "invalid URL".
    """
    try:
        return httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        pass
    try:
        host = urlsplit(str(url)).hostname or ""
    except ValueError:
        host = ""
    literal = parse_ip_literal(host) if host else None
    if literal is not None and not allow_private:
        problem = address_problem(literal)
        if problem:
            raise BlockedAddress(
                f"Connections to {host} ({literal}) are not allowed: it is a {problem}. "
                "The site URL must point to a public WordPress site."
            )
    raise BlockedAddress(f"{url!r} is not a valid URL.")


def default_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SiteUnreachable(
            f"The host name {host!r} could not be resolved (DNS). Check the site URL.",
            retryable=False,
        ) from exc
    return [info[4][0] for info in infos]


class OutboundGuard:
    """Checks destinations and remembers the one address each host name resolved to."""

    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None):
        self.allow_private = allow_private
        self.resolver = resolver or default_resolver
        self._pins: dict[str, str] = {}
        self._lock = threading.Lock()

    def check_url(self, url: httpx.URL | str) -> str:
        """Validate ``url`` and return the IP address to connect to (pinned for its host)."""
        if not isinstance(url, httpx.URL):
            url = parse_url(url, allow_private=self.allow_private)
        if url.scheme not in ALLOWED_SCHEMES:
            raise BlockedAddress(
                f"Only http:// and https:// site URLs are allowed (got {url.scheme or 'none'}://)."
            )
        if not url.host:
            raise BlockedAddress("The site URL has no host name.")
        if url.userinfo:
            raise BlockedAddress("The site URL must not contain a user name or password.")
        # raw_host is what httpcore connects with (IDNA-encoded), so pin under that name.
        host = url.raw_host.decode("ascii")
        return self.pin(host, url.port or (443 if url.scheme == "https" else 80))

    def pin(self, host: str, port: int) -> str:
        host = host.lower().rstrip(".") or host
        with self._lock:
            if host in self._pins:
                return self._pins[host]
        literal = parse_ip_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                resolved = list(self.resolver(host, port))
            except (OSError, UnicodeError) as exc:
                raise SiteUnreachable(
                    f"The host name {host!r} could not be resolved (DNS). Check the site URL.",
                    retryable=False,
                ) from exc
            if not resolved:
                raise SiteUnreachable(
                    f"The host name {host!r} did not resolve to any address.", retryable=False
                )
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolved]
        if not self.allow_private:
            # Every address must be public: a name that resolves to one public and one
            # private address could otherwise be steered to the private one.
            for ip in addresses:
                problem = address_problem(ip)
                if problem:
                    shown = host if literal is not None else f"{host} ({ip})"
                    raise BlockedAddress(
                        f"Connections to {shown} are not allowed: it is a {problem}. "
                        "The site URL must point to a public WordPress site.",
                    )
        # IPv4 first: many hosts publish AAAA records they do not actually route.
        chosen = str(sorted(addresses, key=lambda ip: ip.version)[0])
        with self._lock:
            self._pins.setdefault(host, chosen)
            return self._pins[host]

    def pinned(self, host: str) -> str | None:
        with self._lock:
            return self._pins.get(host.lower().rstrip(".") or host)


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore network backend that connects to the address the guard checked for a host.

    TLS is layered on the returned stream by httpcore with ``server_hostname`` = the URL's
    host, so SNI and certificate verification still use the name, not the IP.
    """

    def __init__(self, guard: OutboundGuard):
        self.guard = guard
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.guard.pinned(host)
        if address is None:
            # Every request goes through OutboundGuard.check_url first; reaching here means
            # a code path skipped the check, so refuse rather than resolve on our own.
            raise httpcore.ConnectError(f"destination {host!r} was not checked by the guard")
        return self._backend.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never used
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore retries are off
        self._backend.sleep(seconds)


def make_ssl_context(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi ships with httpx
        return ssl.create_default_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx transport whose connections go to guard-pinned addresses; no proxies, no env."""

    def __init__(self, guard: OutboundGuard, *, verify: bool | str = True):
        super().__init__(verify=False, trust_env=False)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=make_ssl_context(verify),
            max_connections=4,
            max_keepalive_connections=2,
            keepalive_expiry=5.0,
            network_backend=PinnedBackend(guard),
        )
