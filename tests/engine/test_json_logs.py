"""LOG_FORMAT=json: the worker, beat and the web server (gunicorn) as production runs them,
each a real process; every line of their output is one JSON object, a job's lines carry its
ids, and no line ever carries a connector's API key."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings
from django.db import connection, connections

from syncjobs import services
from syncjobs.models import SyncJob
from tests.conftest import make_connector
from tests.waiting import wait_until

from .conftest import SIM_KEY

ROOT = Path(__file__).resolve().parents[2]
WRONG_KEY = "json-logs-wrong-key-5f0e9d8c7b6a5f4e3d2c1b0a"


def environment(**extra) -> dict[str, str]:
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL=f"postgres://{auth}@{host}/{db['NAME']}",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",  # as much as can be logged: still no key
        PYTHONUNBUFFERED="1",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


class Process:
    def __init__(self, tmp_path: Path, name: str, args: list[str], **env):
        self.path = tmp_path / f"{name}.log"
        with open(self.path, "wb") as log:
            self.process = subprocess.Popen(
                args, cwd=ROOT, env=environment(**env), stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.path.read_text(errors="replace")

    def wait_for(self, text: str, seconds: float = 60) -> None:
        def logged() -> bool:
            if text in self.output():
                return True
            assert self.process.poll() is None, self.output()
            return False

        wait_until(logged, timeout=seconds, what=f"{text!r} in the log", detail=self.output)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


# Celery's signal handler writes this straight to stderr, bypassing logging (it must not take
# logging's locks inside a signal handler): the one line of the worker that is not JSON.
CELERY_SHUTDOWN_NOTICE = re.compile(r"^worker: (Warm|Cold) shutdown \(\w+\)$")


def json_lines(output: str) -> list[dict]:
    """Every line is a JSON object (the assertion names the first that is not)."""
    lines = [
        line
        for line in output.splitlines()
        if line.strip() and not CELERY_SHUTDOWN_NOTICE.match(line)
    ]
    assert lines
    parsed = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry)
        parsed.append(entry)
    return parsed


@pytest.mark.django_db(transaction=True)
def test_worker_logs_json_with_the_job_context_and_never_the_key(tmp_path, org_a, server):
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "set REDIS_URL for this test"
    good = make_connector(
        org_a, name="Logged site", site_url=server.url, api_key=SIM_KEY, entity_types=["member"]
    )
    bad = make_connector(
        org_a, name="Wrong key", site_url=server.url, api_key=WRONG_KEY, entity_types=["member"]
    )
    app.control.purge()
    worker = Process(
        tmp_path,
        "worker",
        [
            *(sys.executable, "-m", "celery", "-A", "config", "--quiet", "worker"),
            *("--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle"),
            *("--hostname", f"json-logs-{os.getpid()}@%h"),
        ],
    )
    try:
        worker.wait_for("ready")
        jobs = [services.start_sync(c, SyncJob.Kind.FULL) for c in (good, bad)]
        for job in jobs:
            worker.wait_for(f"sync job {job.pk} ended")
    finally:
        worker.stop()
        connections.close_all()
    for job in jobs:
        job.refresh_from_db()
    assert [j.status for j in jobs] == [SyncJob.Status.COMPLETED, SyncJob.Status.FAILED]

    output = worker.output()
    assert SIM_KEY not in output and WRONG_KEY not in output
    assert SIM_KEY[:16] not in output and WRONG_KEY[:16] not in output
    entries = json_lines(output)
    for job, connector in zip(jobs, (good, bad), strict=True):
        ended = [e for e in entries if e["message"] == f"sync job {job.pk} ended {job.status}"]
        assert len(ended) == 1
        assert ended[0]["job_id"] == job.pk
        assert ended[0]["connector_id"] == connector.pk
        assert ended[0]["organisation"] == "acme"
    # Celery's own lines (task received, succeeded) come through the same formatter.
    assert any(e["logger"].startswith("celery") for e in entries)


def test_beat_logs_json(tmp_path):
    beat = Process(
        tmp_path,
        "beat",
        [
            *(sys.executable, "-m", "celery", "-A", "config", "--quiet", "beat"),
            *("--schedule", str(tmp_path / "beat-schedule")),
        ],
        SYNC_DISPATCH_INTERVAL="1",
    )
    try:
        beat.wait_for("Sending due task dispatch-due-syncs")
    finally:
        beat.stop()
    entries = json_lines(beat.output())
    assert any(e["logger"] == "celery.beat" for e in entries)


@pytest.mark.django_db(transaction=True)
def test_gunicorn_logs_json_with_the_request_context(tmp_path, org_a):
    with socket_port() as port:
        pass
    web = Process(
        tmp_path,
        "web",
        [
            *(sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py"),
            *("config.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"),
            *("--access-logfile", "-"),
        ],
        METRICS_TOKEN="json-logs-metrics-token-0123456789",
    )
    try:
        web.wait_for("Booting worker")
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False  # not listening yet

        wait_until(healthy, timeout=30, what="gunicorn's /healthz", detail=web.output)
        assert httpx.get(f"{base}/metrics").status_code == 401
        web.wait_for("Unauthorized: /metrics")
        web.wait_for("GET /metrics HTTP/1.1")
    finally:
        web.stop()
        connections.close_all()
    entries = json_lines(web.output())
    assert "json-logs-metrics-token" not in web.output()
    (refused,) = [e for e in entries if e["message"] == "Unauthorized: /metrics"]
    assert refused["logger"] == "django.request" and refused["level"] == "WARNING"
    assert any(e["logger"] == "gunicorn.access" for e in entries)


@pytest.mark.django_db
def test_a_request_s_lines_name_its_organisation_and_connector(caplog, org_a, alice):
    from django.test import Client

    from config.logs import ContextFilter

    caplog.handler.addFilter(ContextFilter())  # as on settings.LOGGING's console handler
    client = Client()
    client.force_login(alice)
    assert client.get("/o/acme/connectors/987654/").status_code == 404
    (line,) = [r for r in caplog.records if r.name == "django.request"]
    assert (line.organisation, line.connector_id) == ("acme", 987654)


class socket_port:
    """A free TCP port on loopback (bound, then released for the server to take)."""

    def __enter__(self):
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        return self.socket.getsockname()[1]

    def __exit__(self, *exc):
        self.socket.close()
