"""Notification tests deliver for real: an SMTP server (aiosmtpd) and an HTTP receiver on
loopback, started per test; syncs run against the simulator (wpsim) like the engine tests."""

import email
import email.policy
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from syncjobs.models import SyncJob
from syncjobs.runner import finish
from tests.conftest import run_like_the_worker, simulated_connector
from tests.reliability.helpers import free_port

SIM_KEY = "notifications-test-sync-key-0123456789abcdef01"


class Inbox:
    """aiosmtpd handler: every message the server accepted, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(
            {
                "to": envelope.rcpt_tos,
                "subject": str(message["Subject"]),
                "from": str(message["From"]),
                "body": message.get_content(),
            }
        )
        return "250 Message accepted for delivery"

    def to(self, address):
        return [m for m in self.messages if address in m["to"]]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "alerts@platform.example"
    try:
        yield inbox
    finally:
        controller.stop()


class Receiver:
    """A webhook receiver on loopback that records every POST; `status` is its answer."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.statuses = []  # answered first, one per request, before falling back to status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "at": time.monotonic()}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def json(self, index=-1):
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def receiver():
    running = Receiver()
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


@pytest.fixture
def celery_eager(settings):
    """Deliveries run in this process, retries included (eagerly, without their countdown)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 0
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


@pytest.fixture
def site():
    from wpsim import SimulatedSite

    return SimulatedSite(records=20, seed=3, key=SIM_KEY)


@pytest.fixture
def connector(org_a, server):
    return simulated_connector(org_a, server, SIM_KEY, name="Acme main site")


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Run a sync the way the worker does, with the after-commit work (deliveries) done."""

    def sync(connector, kind=SyncJob.Kind.FULL):
        return run_like_the_worker(connector, kind, on_commit=django_capture_on_commit_callbacks)

    return sync


def set_key(connector, key):
    connector.api_key = key
    connector.save(update_fields=["api_key_encrypted"])


@pytest.fixture
def ended(django_capture_on_commit_callbacks):
    """End a job through the runner's finish() with chosen timings and counters, for events
    that depend on them (duration, failed records)."""

    def end(connector, status, *, minutes=1, stats=None, error="", kind=None):
        job = SyncJob.objects.create(
            connector=connector,
            kind=kind or SyncJob.Kind.INCREMENTAL,
            status=SyncJob.Status.RUNNING,
            started_at=timezone.now() - timedelta(minutes=minutes),
            stats=stats or {},
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert finish(job, status, error or ("" if status == "COMPLETED" else "It broke."))
        job.refresh_from_db()
        return job

    return end
