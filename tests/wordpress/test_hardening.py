"""Issue 19's cases at the guard and the client: internationalised and look-alike host names,
IPv6 ranges that are not public, and the sync key's exact origin. httpx faked by respx; never
real DNS (the resolver below answers a public address for every name, so a refusal proves the
guard needed no DNS to know better)."""

import httpx
import pytest
import respx

from connectors.wordpress import contract, guard
from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import AuthenticationFailed, BlockedAddress, InvalidResponse
from connectors.wordpress.guard import OutboundGuard, parse_url

from .conftest import KEY, PUBLIC_IP, SITE, public_resolver

API = f"{SITE}/api/v1/sync/"
PING = {
    "plugin": "association-app",
    "plugin_version": "1.0.0",
    "contract_version": 1,
    "site_name": "Example",
    "entity_types": list(contract.ENTITY_TYPES),
    "max_per_page": 100,
}


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


# --- 1. invalid internationalised names: refusals in words, never IDNA exceptions ---------

INVALID_IDNA = ["http://xn--a.example", "http://xn--localhost-/x", "https://xn--.example.org/"]


@pytest.mark.parametrize("url", INVALID_IDNA)
def test_invalid_idna_hosts_are_refused_by_parse_url_and_check_url(url):
    with pytest.raises(BlockedAddress, match="host name is not valid"):
        parse_url(url)
    with pytest.raises(BlockedAddress, match="host name is not valid"):
        OutboundGuard(resolver=public_resolver).check_url(url)


def test_check_url_refuses_a_joined_url_httpx_itself_cannot_decode():
    # What a redirect's Location becomes: httpx builds it, but its .host raises IDNAError.
    target = httpx.URL(SITE).join("http://xn--localhost-/x")
    with pytest.raises(BlockedAddress, match="host name is not valid"):
        OutboundGuard(resolver=public_resolver).check_url(target)


@pytest.mark.parametrize("url", INVALID_IDNA)
def test_the_client_refuses_an_invalid_idna_site_url_in_its_constructor(url):
    with pytest.raises(BlockedAddress, match="host name is not valid"):
        WordPressClient(url, KEY, resolver=public_resolver)


def test_a_redirect_to_an_invalid_idna_host_is_an_invalid_response(mock, make_client):
    mock.get(API + "ping").respond(302, headers={"Location": "http://xn--localhost-/x"})
    with pytest.raises(InvalidResponse, match=r"redirected .* to an invalid URL"):
        make_client().ping()


def test_unicode_site_urls_are_contacted_by_their_ascii_name(mock, make_client):
    ping = mock.get("https://xn--bcher-kva.example/api/v1/sync/ping").respond(200, json=PING)
    client = make_client(site_url="https://BÜCHER.example/")
    assert client.ping()["plugin"] == "association-app"
    assert ping.calls.last.request.headers[contract.KEY_HEADER] == KEY
    assert client.site_url == "https://xn--bcher-kva.example"


# --- 2. IPv6 ranges that are not public ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[2001::7f00:1]/", "Teredo|unspecified|non-public"),  # Teredo, server 0.0.0.0
        # Teredo whose server and client are both public: still a tunnel, not a site.
        ("http://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/", "private network|non-public"),
        ("http://[fec0::1]/", "site-local"),
        ("http://[3fff::1]/", "documentation"),
        ("http://[2001:db8::1]/", "private|documentation|non-public"),
        ("http://[::127.0.0.1]/", "loopback"),  # IPv4-compatible
        ("http://[::8.8.8.8]/", "reserved|non-public"),  # IPv4-compatible, deprecated
        ("http://[2002:a00:1::1]/", "private"),  # 6to4 of 10.0.0.1
        ("http://[64:ff9b::7f00:1]/", "loopback"),  # NAT64 of 127.0.0.1
    ],
)
def test_non_public_ipv6_addresses_are_refused(url, reason):
    with pytest.raises(BlockedAddress, match=reason):
        OutboundGuard(resolver=public_resolver).check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://[2606:4700:4700::1111]/",
        "http://[64:ff9b::808:808]/",  # NAT64 of a public IPv4 (IPv6-only hosts use it)
        "http://[2002:808:808::1]/",  # 6to4 of a public IPv4
    ],
)
def test_public_ipv6_addresses_pass(url):
    assert OutboundGuard(resolver=public_resolver).check_url(url)


def test_a_name_resolving_to_a_site_local_ipv6_address_is_refused():
    guard = OutboundGuard(resolver=lambda host, port: ["fec0::5"])
    with pytest.raises(BlockedAddress, match="site-local"):
        guard.check_url("https://wp.example.org/")


# --- 3. look-alikes of local hosts, normalised before the check ------------------------------

LOOK_ALIKES = [
    "http://localhost./",
    "http://LOCALHOST./",
    "http://localhost。/",
    "http://ｌｏｃａｌｈｏｓｔ/",
    "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
    "http://wp.localhost/",
    "http://１２７.０.０.１/",
    "http://127。0。0。1/",
    "http://127．0．0．1/",
    "http://0x7f.1/",
]


@pytest.mark.parametrize("url", LOOK_ALIKES)
def test_local_look_alikes_are_refused_without_dns(url):
    # The resolver would say "public" for any name: the refusal comes from the normalisation.
    with pytest.raises(BlockedAddress, match="loopback"):
        OutboundGuard(resolver=public_resolver).check_url(url)
    with pytest.raises(BlockedAddress, match="loopback"):
        guard.check_host(url.split("/")[2])


def test_names_from_the_hosts_file_are_checked_like_their_addresses(tmp_path, monkeypatch):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.1.2.3 intranet.corp  # the wiki\n8.8.8.8 dns.test\n")
    monkeypatch.setattr(guard, "HOSTS_FILE", str(hosts))
    with pytest.raises(BlockedAddress, match=r"intranet\.corp \(10\.1\.2\.3\).*private"):
        guard.check_host("INTRANET.corp.")
    assert guard.check_host("dns.test") == "dns.test"
    assert guard.check_host("intranet.corp", allow_private=True) == "intranet.corp"


def test_allow_private_keeps_letting_local_names_through():
    guard_ = OutboundGuard(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    assert guard_.check_url("http://localhost。:8080/") == "127.0.0.1"
    assert guard_.check_url("http://１２７.０.０.１/") == "127.0.0.1"


# --- 5. the sync key goes to the exact origin only ------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://wp.example.org:8443/moved/ping",  # same host, another port
        "http://wp.example.org/moved/ping",  # same host, downgraded scheme
        "https://www.wp.example.org/moved/ping",  # another host
    ],
)
def test_the_key_is_not_sent_to_another_origin_and_the_error_says_why(mock, client, target):
    mock.get(API + "ping").respond(302, headers={"Location": target})
    other = mock.get(target).respond(
        401, json={"code": contract.ERROR_MISSING_KEY, "message": "no key", "data": {}}
    )
    with pytest.raises(AuthenticationFailed) as excinfo:
        client.ping()
    assert contract.KEY_HEADER.lower() not in other.calls.last.request.headers
    assert "another address (scheme, host or port)" in excinfo.value.message
    assert "Set the connector's site URL to the address the site redirects to" in (
        excinfo.value.message
    )
    assert KEY not in excinfo.value.message


def test_the_key_follows_a_redirect_within_the_same_origin(mock, client):
    # An explicit default port is the same origin.
    target = "https://WP.example.org:443/wp/api/v1/sync/ping"
    mock.get(API + "ping").respond(301, headers={"Location": target})
    final = mock.get("https://wp.example.org/wp/api/v1/sync/ping").respond(200, json=PING)
    client.ping()
    assert final.calls.last.request.headers[contract.KEY_HEADER] == KEY


def test_the_resolver_is_asked_for_the_ascii_name():
    asked = []

    def resolver(host, port):
        asked.append(host)
        return [PUBLIC_IP]

    OutboundGuard(resolver=resolver).check_url("https://ＷＰ.Example.org./")
    assert asked == ["wp.example.org"]
