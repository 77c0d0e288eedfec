"""The two checks operators run, as they run them: `manage.py sync <connector> --kind full
--wait` and `manage.py notifications_check` are real processes whose only mail settings are
EMAIL_HOST and EMAIL_PORT in their environment, pointing at the loopback SMTP server. The
in-process tests set Django's settings directly, so they would not notice the environment
being read under other names."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from connectors.models import Connector
from notifications.models import Delivery, Event
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import set_key

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, smtp_port):
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    env = dict(os.environ)
    for name in ("EMAIL_BACKEND", "EMAIL_FILE_PATH", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"):
        env.pop(name, None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL=f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        # This xdist worker's broker, where no Celery worker answers: the command sends the
        # mails from its own process, as on a host without a worker.
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        SITE_URL="https://platform.example.org",
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_sync_command_with_a_wrong_key_mails_the_admin_once(alice, connector, smtp, settings):
    set_key(connector, "wrong-key-" + "v" * 30)
    for _ in range(2):
        done = manage(
            "sync", connector.name, "--kind", "full", "--wait", smtp_port=settings.EMAIL_PORT
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "FAILED" in done.stdout
    assert list(SyncJob.objects.values_list("status", flat=True)) == ["FAILED", "FAILED"]

    mails = smtp.to("alice@acme.example")
    assert len(mails) == 1, [m["subject"] for m in smtp.messages]
    assert mails[0]["subject"] == "[Association App] Acme main site: sync failed"
    first = SyncJob.objects.earliest("created_at")
    assert f"https://platform.example.org{first.get_absolute_url()}" in mails[0]["body"]
    assert "The site rejected the sync API key" in mails[0]["body"]
    delivery = Delivery.objects.get()
    assert (delivery.event, delivery.status) == (Event.ERROR, Delivery.Status.SENT)


@pytest.mark.django_db(transaction=True)
def test_notifications_check_command_mails_a_stale_connector_once(alice, org_a, smtp, settings):
    hourly = make_connector(org_a, name="Hourly site", frequency=Connector.Frequency.HOURLY)
    make_connector(org_a, name="Manual site", frequency=Connector.Frequency.MANUAL)
    Connector.objects.update(created_at=timezone.now() - timedelta(hours=3))

    first = manage("notifications_check", smtp_port=settings.EMAIL_PORT)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 connector newly stale" in first.stdout
    again = manage("notifications_check", smtp_port=settings.EMAIL_PORT)
    assert "0 connectors newly stale" in again.stdout

    assert [m["subject"] for m in smtp.to("alice@acme.example")] == [
        "[Association App] Hourly site: data is stale"
    ]
    assert hourly.get_absolute_url() in smtp.messages[0]["body"]
