"""`make demo` shows the notification mails without a mail server: its environment picks
Django's file backend under var/mail, and a failing sync's mail lands there as a file."""

import importlib.util
from pathlib import Path

from django.test import override_settings

from syncjobs.models import SyncJob

ROOT = Path(__file__).resolve().parents[2]


def demo_module(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Its var/ folder (secrets, broker, metrics) is the test's own, not the checkout's.
    monkeypatch.setattr(module, "VAR", tmp_path / "var")
    return module


def test_the_demo_writes_mails_to_files_unless_given_an_smtp_server(tmp_path, monkeypatch):
    monkeypatch.delenv("EMAIL_HOST", raising=False)
    monkeypatch.delenv("EMAIL_BACKEND", raising=False)
    monkeypatch.delenv("EMAIL_FILE_PATH", raising=False)
    demo = demo_module(tmp_path, monkeypatch)
    env = demo.demo_environment()
    assert env["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert env["EMAIL_FILE_PATH"] == str(tmp_path / "var" / "mail")
    assert env["SITE_URL"].startswith("http://127.0.0.1:")  # links in the mails open

    monkeypatch.setenv("EMAIL_HOST", "smtp.example.org")
    env = demo.demo_environment()
    assert env.get("EMAIL_BACKEND") is None  # Django's SMTP backend, to that server


def test_a_failed_sync_in_the_demo_leaves_its_mail_in_var_mail(
    alice, connector_a, ended, tmp_path, celery_eager
):
    mail_dir = tmp_path / "mail"
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
    ):
        ended(connector_a, SyncJob.Status.FAILED, error="The sync key was refused.")
    files = list(mail_dir.iterdir())
    assert len(files) == 1
    text = files[0].read_text()
    assert "Subject: [Association App] Acme Association site: sync failed" in text
    assert "To: alice@acme.example" in text
    assert "The sync key was refused." in text
