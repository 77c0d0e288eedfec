"""The simulator's HTTP(S) server: a ThreadingHTTPServer in a background thread.

``serve(site)`` returns a running ``SimServer`` (``.url``, ``.stop()``, context manager).
Transport-level faults (hang, reset, truncated body...) are applied here; everything about
what the site answers lives in wpsim.api.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import struct
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from connectors.wordpress import contract

from . import api
from .site import FAULT_KINDS, SimulatedSite

__all__ = ["SimServer", "generate_self_signed", "serve"]

_OVERSIZE: bytes | None = None


def oversize_body() -> bytes:
    """A JSON body just over the client's 10 MiB cap (built once)."""
    global _OVERSIZE
    if _OVERSIZE is None:
        pad = b"x" * (contract.MAX_RESPONSE_BYTES + 1024)
        _OVERSIZE = b'{"items":[],"padding":"' + pad + b'"}'
    return _OVERSIZE


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses one connection
    server_version = "Apache"
    sys_version = ""

    server: _Server

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write(f"wpsim {self.address_string()} {format % args}\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    # --- dispatch --------------------------------------------------------------------

    def dispatch(self, method: str) -> None:
        # Requests in flight, so tests can see how many a fleet of workers sends at once.
        site: SimulatedSite = self.server.site
        site.request_started()
        try:
            self._dispatch(method)
        finally:
            site.request_ended()

    def _dispatch(self, method: str) -> None:
        site: SimulatedSite = self.server.site
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = api.Request(
            method, split.path, parse_qs(split.query, keep_blank_values=True), headers, body
        )
        if split.path.startswith("/__sim/"):
            self.send(self.control(request))
            return
        scope, _, route = api.classify(request)
        fault = None
        if not site.state_fault("not_wordpress"):
            fault_scope = {"rest_other": "other"}.get(scope, scope)
            fault = site.take_fault(fault_scope, api.endpoint_of(route))
        logged = {k: v for k, v in headers.items() if k != contract.KEY_HEADER.lower()}
        logged["key-sent"] = contract.KEY_HEADER.lower() in headers
        if fault is not None:
            if fault.kind == "latency":
                self.server.stopping.wait(fault.seconds)
            elif fault.kind == "hang":
                site.log_request(method, self.path, 0, logged)
                self.server.stopping.wait(fault.seconds)
                self.close_connection = True
                return
            elif fault.kind == "reset":
                site.log_request(method, self.path, 0, logged)
                self.reset()
                return
            elif fault.kind == "status":
                reply = self.fault_status(fault)
                site.log_request(method, self.path, reply.status, logged)
                self.send(reply)
                return
            elif fault.kind == "html":
                reply = api.Reply(200, api.MAINTENANCE, content_type=api.HTML_TYPE)
                site.log_request(method, self.path, 200, logged)
                self.send(reply)
                return
            elif fault.kind == "oversize":
                site.log_request(method, self.path, 200, logged)
                self.send(api.plugin_reply(200, body=oversize_body()))
                return
        reply = api.handle(site, request)
        if fault is not None and reply.status == 200:
            if fault.kind == "truncate":
                reply.body = reply.body[: max(1, len(reply.body) // 2)]
            elif fault.kind == "wrong_total" and reply.body.startswith(b'{"items":'):
                payload = json.loads(reply.body)
                payload["total"] += 7  # headers and total_pages keep the real figures
                reply.body = json.dumps(payload, ensure_ascii=False).encode()
        site.log_request(method, self.path, reply.status, logged)
        self.send(reply)

    def fault_status(self, fault) -> api.Reply:
        status = fault.status
        if status == 429:
            return api.rate_limited(fault.retry_after or 1)
        headers = []
        if fault.retry_after is not None and status == 503:
            headers.append((contract.RETRY_AFTER_HEADER, str(fault.retry_after)))
        if status in (502, 503, 504):
            title = {
                502: "502 Bad Gateway",
                503: "503 Service Unavailable",
                504: "504 Gateway Timeout",
            }
            page = api.html_page(title[status], "The upstream server did not answer.")
            return api.Reply(status, page, headers, content_type=api.HTML_TYPE)
        if status == 500:
            return api.plugin_reply(
                500,
                api.error_body(500, contract.ERROR_INTERNAL, "Simulated internal error."),
                headers=headers,
            )
        return api.plugin_reply(
            status,
            api.error_body(status, "wpsim_fault", f"Simulated HTTP {status}."),
            headers=headers,
        )

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0) and no answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.rfile.close()
            self.wfile.close()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def send(self, reply: api.Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            # Headers and body leave in ONE write: two small writes meet Nagle + delayed ACK
            # and cost ~40 ms per response.
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(reply.body)
            self.flush_headers()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            # The client gave up (e.g. the 10 MiB cap): nothing to report.
            self.close_connection = True

    # --- control API (/__sim/...) ----------------------------------------------------

    def control(self, request: api.Request) -> api.Reply:
        site: SimulatedSite = self.server.site
        sent = request.headers.get(contract.KEY_HEADER.lower())
        if sent not in (site.admin_key, site.key):
            return api.json_reply(401, api.error_body(401, "wpsim_forbidden", "Send the site key."))
        try:
            payload = json.loads(request.body) if request.body else {}
        except json.JSONDecodeError:
            return api.json_reply(400, api.error_body(400, "wpsim_bad_json", "Body is not JSON."))
        path, method = request.path, request.method
        try:
            if path == "/__sim/faults" and method == "POST":
                kind = payload.pop("kind", None)
                return api.json_reply(201, site.inject(kind, **payload).as_dict())
            if path == "/__sim/faults" and method == "GET":
                return api.json_reply(200, [f.as_dict() for f in site.faults])
            if path == "/__sim/faults" and method == "DELETE":
                site.clear_faults()
                return api.json_reply(200, {"cleared": True})
            if path == "/__sim/key" and method == "POST":
                return api.json_reply(200, {"key": site.rotate_key(payload.get("key"))})
            if path == "/__sim/changes" and method == "POST":
                action = payload.get("action")
                if action == "random":
                    return api.json_reply(200, site.random_changes())
                if action not in ("edit", "add", "delete"):
                    raise ValueError("action must be edit, add, delete or random")
                ids = getattr(site, action)(payload["entity_type"], int(payload.get("n", 1)))
                return api.json_reply(200, {"ids": ids})
            if path == "/__sim/clock" and method == "POST":
                if "advance" in payload:
                    site.clock.advance(float(payload["advance"]))
                if "freeze" in payload:
                    at = payload["freeze"]
                    site.clock.freeze(
                        dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC) if at else None
                    )
                if payload.get("unfreeze"):
                    site.clock.unfreeze()
                return api.json_reply(200, {"now": site.ping()["server_time_gmt"]})
            if path == "/__sim/state" and method == "GET":
                return api.json_reply(200, site.state())
            if path == "/__sim/writes" and method == "GET":
                return api.json_reply(200, site.writes)
            parts = path.split("/")
            if len(parts) == 5 and parts[2] == "records" and method == "GET":
                return api.json_reply(200, site.record(parts[3], int(parts[4])))
        except (KeyError, TypeError, ValueError) as exc:
            message = str(exc) if not isinstance(exc, KeyError) else f"missing or unknown {exc}"
            return api.json_reply(400, api.error_body(400, "wpsim_bad_request", message))
        return api.json_reply(404, api.error_body(404, "wpsim_no_route", f"Try {FAULT_KINDS}."))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address, site, *, ssl_context=None, verbose=False):
        self.site = site
        self.ssl_context = ssl_context
        self.verbose = verbose
        self.stopping = threading.Event()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # Handshake in the connection's own thread, so a stalled client blocks no one.
            request.settimeout(10)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                with contextlib.suppress(OSError):
                    request.close()
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


class SimServer:
    """A running simulator. ``url`` has no trailing slash."""

    def __init__(self, site: SimulatedSite, httpd: _Server, cert_path: str | None):
        self.site = site
        self._httpd = httpd
        self.host, self.port = httpd.server_address[:2]
        scheme = "https" if httpd.ssl_context is not None else "http"
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{shown}:{self.port}"
        #: PEM of the self-signed certificate (TLS only): pass as ``verify=`` to trust it.
        self.cert_path = cert_path
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._changer: threading.Thread | None = None
        self._stopped = False

    def start(self) -> SimServer:
        self._thread.start()
        return self

    def change_every(self, seconds: float) -> None:
        """Edit/add/delete a few random records every ``seconds`` (background thread)."""

        def loop():
            while not self._httpd.stopping.wait(seconds):
                self.site.random_changes()

        self._changer = threading.Thread(target=loop, daemon=True)
        self._changer.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._httpd.stopping.set()  # wakes hanging/latency faults
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Block until interrupted (the management command)."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SimServer {self.url}>"


def generate_self_signed(host: str = "127.0.0.1", directory: str | None = None) -> tuple[str, str]:
    """Write a fresh self-signed certificate + key (PEM) for ``host``; returns their paths."""
    # Deferred: only the TLS mode needs cryptography, and it is most of wpsim's import time.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wpsim self-signed")])
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(directory or tempfile.mkdtemp(prefix="wpsim-tls-"))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def serve(
    site: SimulatedSite,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls: bool = False,
    change_every: float | None = None,
    verbose: bool = False,
) -> SimServer:
    """Start serving ``site`` in a background thread; port 0 picks a free port."""
    context = None
    cert_path = None
    if tls:
        cert_path, key_path = generate_self_signed(host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
    httpd = _Server((host, port), site, ssl_context=context, verbose=verbose)
    server = SimServer(site, httpd, cert_path)
    site.set_base_url(server.url)
    server.start()
    if change_every:
        server.change_every(change_every)
    return server
