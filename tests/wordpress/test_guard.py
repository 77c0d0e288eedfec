"""The outbound (SSRF) guard: which destinations a connector may reach. Never real DNS."""

import httpx
import pytest
import respx

from connectors.wordpress.client import WordPressClient
from connectors.wordpress.errors import BlockedAddress
from connectors.wordpress.guard import OutboundGuard, PinnedBackend

KEY = "test-sync-key-0123456789abcdef0123456789"


def resolver_for(mapping):
    calls = []

    def resolve(host, port):
        calls.append(host)
        return mapping[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8089/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.254/", "private"),
        ("http://192.168.1.10/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://100.127.255.254/", "carrier-grade NAT"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
        ("http://2130706433/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0x7f.0.0.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://[fd12:3456::1]/", "unique local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://198.18.0.1/", "benchmarking"),
    ],
)
def test_non_public_addresses_are_refused(url, reason):
    guard = OutboundGuard(resolver=resolver_for({}))
    with pytest.raises(BlockedAddress, match=reason) as excinfo:
        guard.check_url(url)
    assert "public WordPress site" in excinfo.value.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://wp.example.org/",
        "file:///etc/passwd",
        "gopher://wp.example.org/",
        "ws://wp.example.org/",
    ],
)
def test_only_http_schemes(url):
    with pytest.raises(BlockedAddress, match=r"must start with http:// or https://"):
        OutboundGuard(resolver=resolver_for({})).check_url(url)


def test_credentials_in_url_are_refused():
    with pytest.raises(BlockedAddress, match="user name or password"):
        OutboundGuard(resolver=resolver_for({})).check_url("https://admin:pw@wp.example.org/")


def test_names_resolving_to_private_addresses_are_refused():
    guard = OutboundGuard(resolver=resolver_for({"intranet.example.org": ["192.168.0.7"]}))
    with pytest.raises(BlockedAddress, match=r"intranet.example.org \(192.168.0.7\)"):
        guard.check_url("https://intranet.example.org/")


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    guard = OutboundGuard(
        resolver=resolver_for({"mixed.example.org": ["93.184.216.34", "10.0.0.1"]})
    )
    with pytest.raises(BlockedAddress):
        guard.check_url("https://mixed.example.org/")


def test_public_names_and_addresses_pass_and_are_pinned_once():
    resolve = resolver_for({"wp.example.org": ["93.184.216.34", "2606:2800:220:1::1"]})
    guard = OutboundGuard(resolver=resolve)
    assert guard.check_url("https://wp.example.org/api/v1/sync/ping") == "93.184.216.34"
    assert guard.check_url("https://WP.example.org/other") == "93.184.216.34"
    assert resolve.calls == ["wp.example.org"]  # resolved once: no DNS rebinding window
    assert guard.check_url("https://8.8.8.8/") == "8.8.8.8"
    assert guard.check_url("http://[2606:4700::1111]/") == "2606:4700::1111"


def test_allow_private_lets_the_demo_reach_loopback():
    guard = OutboundGuard(allow_private=True, resolver=resolver_for({"wp.test": ["127.0.0.1"]}))
    assert guard.check_url("http://127.0.0.1:8089/") == "127.0.0.1"
    assert guard.check_url("http://wp.test:8089/") == "127.0.0.1"
    assert guard.check_url("http://2130706433/") == "127.0.0.1"
    with pytest.raises(BlockedAddress):  # schemes are still checked
        guard.check_url("file:///etc/passwd")


def test_the_client_refuses_before_sending_anything():
    with respx.mock(assert_all_called=False) as mock:
        client = WordPressClient("http://169.254.169.254", KEY, resolver=resolver_for({}))
        with pytest.raises(BlockedAddress, match="metadata"):
            client.ping()
        assert not mock.calls
        assert client.request_count == 0


def test_redirect_from_public_name_to_private_address_is_refused():
    resolve = resolver_for({"wp.example.org": ["93.184.216.34"], "evil.example.net": ["127.0.0.1"]})
    with respx.mock(assert_all_called=False) as mock:
        mock.get("https://wp.example.org/api/v1/sync/ping").respond(
            307, headers={"Location": "https://evil.example.net/steal"}
        )
        target = mock.get("https://evil.example.net/steal").respond(200, json={})
        client = WordPressClient("https://wp.example.org", KEY, resolver=resolve)
        with pytest.raises(BlockedAddress, match="loopback"):
            client.ping()
        assert not target.called


def test_proxy_environment_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    client = WordPressClient("https://wp.example.org", KEY, resolver=resolver_for({}))
    assert client._http._trust_env is False
    assert not client._http._mounts


def test_pinned_backend_refuses_unchecked_hosts():
    import httpcore

    backend = PinnedBackend(OutboundGuard(resolver=resolver_for({})))
    with pytest.raises(httpcore.ConnectError, match="not checked"):
        backend.connect_tcp("unchecked.example.org", 80)


def test_pinned_connection_goes_to_the_checked_address_with_the_original_host_header():
    """A real loopback server: the client connects to the pinned IP, Host stays the name."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen["host"] = self.headers["Host"]
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        resolve = resolver_for({"association.example.org": ["127.0.0.1"]})
        client = WordPressClient(
            f"http://association.example.org:{port}", KEY, allow_private=True, resolver=resolve
        )
        response = client.probe("anything")
        assert response.status_code == 200
        assert seen["host"] == f"association.example.org:{port}"
        client.probe("again")
        assert resolve.calls == ["association.example.org"]
        client.close()
        # The same name without allow_private is refused: it resolves to loopback.
        strict = WordPressClient(f"http://association.example.org:{port}", KEY, resolver=resolve)
        with pytest.raises(BlockedAddress):
            strict.probe("anything")
    finally:
        server.shutdown()
        server.server_close()


def test_httpx_url_parsing_of_odd_hosts_still_goes_through_the_guard():
    guard = OutboundGuard(resolver=resolver_for({}))
    with pytest.raises(BlockedAddress):
        guard.check_url(httpx.URL("http://0x7f000001/"))
