"""Outbound (SSRF) guard for connector URLs.

Site URLs are typed by organisation admins, so the platform must not become a proxy into
its own network. For every request (and every redirect hop) the client asks the guard for
the address to connect to:

1. the URL must be http(s), with a host and no credentials; the host is normalised first
   (NFKC, so full-width and circled letters and digits become ASCII; ideographic full stops
   become dots; case; trailing dot; IDNA per UTS 46) and a host no resolver could look up
   (``xn--a``) is refused in words, never with an IDNA exception (``canonical_host``);
2. names that need no DNS to be known local (``localhost``, ``*.localhost``, the names of
   /etc/hosts) are checked like the addresses they stand for, so the forms refuse them too;
3. the host is resolved ONCE per client (IP literals in any spelling inet_aton accepts —
   ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` — are normalised first, because resolvers and
   browsers accept them too);
4. every resolved address must be public: the standard library's ``is_global``, plus the
   ranges Python 3.11 still calls global (site-local ``fec0::/10``, documentation
   ``3fff::/20``) and the IPv4 address embedded in IPv4-mapped/compatible, NAT64, 6to4 and
   Teredo (server and client) addresses;
5. the connection is then made to that checked address (``PinnedBackend``), never to a fresh
   resolution, so DNS rebinding between check and connect cannot redirect it. The Host
   header and TLS SNI/certificate check still use the name.

``allow_private=True`` (settings.WORDPRESS_ALLOW_PRIVATE_HOSTS) skips steps 2 and 4 for the demo and
tests; resolution and pinning still happen.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
import threading
import typing
import unicodedata
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import certifi
import httpcore
import httpx
import idna

from .errors import BlockedAddress, SiteUnreachable

__all__ = [
    "ALLOWED_SCHEMES",
    "GuardedTransport",
    "OutboundGuard",
    "PinnedBackend",
    "address_problem",
    "canonical_host",
    "check_host",
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
    # Python 3.11's is_global still says yes to these two.
    (ipaddress.ip_network("fec0::/10"), "site-local address"),
    (ipaddress.ip_network("3fff::/20"), "documentation address"),
]
# IPv6 prefixes that embed an IPv4 address the packet may end up at.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

#: Where the names that resolve without DNS live (a test points it at its own file).
HOSTS_FILE = "/etc/hosts"
# Characters that browsers and resolvers read as a dot in a host name (after NFKC, which
# already turns the full-width U+FF0E into "." and the half-width U+FF61 into U+3002).
_DOTS = {0x3002: "."}
# One DNS label (after IDNA encoding): letters, digits, hyphens (underscores occur in the wild).
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")

# Host names made only of digits, dots and hex prefixes are IPv4 literals in some spelling.
_IPV4ISH = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an unspecified address", "a loopback address"."""
    return f"{'an' if noun[:1] in 'aeiouAEIOU' else 'a'} {noun}"


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
        # IPv6 addresses that carry an IPv4 address the packet may end up at: each embedded
        # address must be public itself.
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped is not None:
            embedded.append(ip.ipv4_mapped)
        elif ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        elif ip in _SIX_TO_FOUR:
            embedded.append(ip.sixtofour)
        elif ip.teredo is not None:
            embedded.extend(ip.teredo)  # (server, client)
        for inner in embedded:
            problem = address_problem(inner)
            if problem:
                return f"{problem} (embedded in the IPv6 address {ip})"
        if embedded and (ip.ipv4_mapped is not None or ip in _NAT64 or ip in _SIX_TO_FOUR):
            # Translations of a public IPv4 address (an IPv6-only host reaches IPv4 sites
            # through NAT64): where the packet goes is the IPv4 address just checked.
            return None
        # Teredo and IPv4-compatible addresses go on to the IPv6 address's own checks, which
        # refuse them (neither range is global): a public client inside must not let through
        # a tunnel whose other end is local.
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


def canonical_host(host: str) -> str:
    """The lower-case ASCII name (or IP address) a resolver would look up for ``host``.

    NFKC first (``ｌｏｃａｌｈｏｓｔ``, ``ⓛⓞⓒⓐⓛⓗⓞⓢⓣ``, ``１２７.０.０.１``), ideographic full
    stops as dots (``127。0。0。1``), no trailing dot, then IDNA (UTS 46) for non-ASCII names
    and a validity check of ASCII ``xn--`` labels, so ``xn--a.example`` is refused here in
    words instead of failing as an IDNA exception deep inside httpx. Raises BlockedAddress.
    """
    shown = host[:100]
    text = unicodedata.normalize("NFKC", host).translate(_DOTS).strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:  # IPv6 zone id: never a valid destination for us
        raise BlockedAddress(f"The address {shown!r} has a zone id; use a public host name.")
    if ":" in text:  # only IPv6 literals have colons in a host
        try:
            return str(ipaddress.IPv6Address(text))
        except ValueError:
            raise BlockedAddress(f"{shown!r} is not a valid IPv6 address.") from None
    text = text.rstrip(".")
    if not text:
        raise BlockedAddress("The site URL has no host name.")
    invalid = BlockedAddress(
        f"The host name is not valid ({shown!r}): use letters, digits, dots and hyphens only, "
        "e.g. www.example.org."
    )
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise invalid from None
    labels = text.split(".")
    if len(text) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise invalid
    for label in labels:
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                raise BlockedAddress(
                    f"The host name is not valid ({shown!r}): {label!r} is not a valid "
                    "internationalised (xn--) label."
                ) from None
    return text


def _hosts_file_addresses(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses /etc/hosts gives ``name`` (resolvers answer from it before any DNS)."""
    found = []
    try:
        with open(HOSTS_FILE, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and name in (alias.lower() for alias in fields[1:]):
                    try:
                        found.append(ipaddress.ip_address(fields[0].split("%")[0]))
                    except ValueError:
                        continue
    except OSError:
        return []
    return found


def check_host(host: str, *, allow_private: bool = False) -> str:
    """``canonical_host(host)``, refusing (unless ``allow_private``) what is known to be
    non-public without asking DNS: IP literals in any spelling, ``localhost`` and its
    subdomains, and names /etc/hosts maps to a non-public address. The forms call this so an
    admin hears of it when saving, not at the first sync. Raises BlockedAddress."""
    name = canonical_host(host)
    literal = parse_ip_literal(name)
    if allow_private:
        return str(literal) if literal is not None else name
    if literal is not None:
        addresses = [literal]
    elif name == "localhost" or name.endswith(".localhost"):
        addresses = [ipaddress.ip_address("127.0.0.1")]  # RFC 6761: always loopback
    else:
        addresses = _hosts_file_addresses(name)
    for ip in addresses:
        problem = address_problem(ip)
        if problem:
            shown = str(ip) if literal is not None else f"{name} ({ip})"
            raise BlockedAddress(
                f"Connections to {shown} are not allowed: it is {_a(problem)}; "
                "the platform does not connect to private or local networks. "
                "The site URL must point to a public WordPress site."
            )
    return str(literal) if literal is not None else name


def parse_url(url: str, *, allow_private: bool = False) -> httpx.URL:
    """The http(s) URL ``url`` with its host in canonical form (``check_host``).

    Never raises anything but BlockedAddress: every spelling httpx or idna would choke on
    (bad IDNA, bad ports, IP spellings httpx rejects but resolvers accept, such as
    ``0177.0.0.1``) becomes a refusal an admin can read.
    """
    text = str(url)
    invalid = BlockedAddress(f"{text[:200]!r} is not a valid URL.")
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        raise invalid from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise BlockedAddress(
            "The site URL must start with http:// or https:// "
            f"(got {parts.scheme or 'no scheme'}://)."
        )
    if not hostname:
        raise BlockedAddress("The site URL has no host name.")
    if parts.username is not None or parts.password is not None:
        raise BlockedAddress("The site URL must not contain a user name or password.")
    host = check_host(hostname, allow_private=allow_private)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    try:
        return httpx.URL(parts._replace(netloc=netloc).geturl())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise invalid from None


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
        """Validate ``url`` and return the IP address to connect to (pinned for its host).

        Raises BlockedAddress or SiteUnreachable only: an httpx.URL built from a redirect's
        Location can hold a host httpx itself cannot decode (``xn--localhost-``)."""
        if isinstance(url, httpx.URL):
            try:
                raw_host = url.raw_host.decode("ascii")
            except UnicodeError:
                raise BlockedAddress(f"{str(url)[:200]!r} is not a valid URL.") from None
            if url.scheme not in ALLOWED_SCHEMES:
                raise BlockedAddress(
                    "Only http:// and https:// site URLs are allowed "
                    f"(got {url.scheme or 'none'}://)."
                )
            if not raw_host:
                raise BlockedAddress("The site URL has no host name.")
            if url.userinfo:
                raise BlockedAddress("The site URL must not contain a user name or password.")
            check_host(raw_host, allow_private=self.allow_private)
        else:
            url = parse_url(url, allow_private=self.allow_private)
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
                        f"Connections to {shown} are not allowed: it is {_a(problem)}. "
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


@functools.lru_cache(maxsize=16)
def make_ssl_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS settings of a client, made once per process and `verify` value: loading the
    CA bundle took ~100 ms of CPU, more than the rest of a no-change sync job together
    (bench/fleet.py). A context is only read once made, and is safe to share between
    connections and threads."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context(cafile=certifi.where())


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
