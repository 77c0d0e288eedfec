import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import diff, record, snapshot
from connectors import crypto
from connectors.models import Connector
from syncjobs.models import SyncJob

from .conftest import make_connector


def test_api_key_is_encrypted_at_rest_and_round_trips(connector_a):
    stored = Connector.objects.values_list("api_key_encrypted", flat=True).get(pk=connector_a.pk)
    assert "sync-key-acme" not in stored
    assert Connector.objects.get(pk=connector_a.pk).api_key == "sync-key-acme-0123456789abcdef"


def test_key_rotation_old_key_still_decrypts(settings, connector_a):
    from cryptography.fernet import Fernet

    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    assert Connector.objects.get(pk=connector_a.pk).api_key == "sync-key-acme-0123456789abcdef"


def test_undecryptable_key_says_what_to_do(settings, connector_a):
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretUnreadable, match="Enter the key again"):
        Connector.objects.get(pk=connector_a.pk).api_key


def test_org_admin_sees_own_connectors_only(alice_client, connector_a, connector_b):
    response = alice_client.get(reverse("connectors:list", args=["acme"]))
    assert response.status_code == 200
    assert connector_a.name in response.text
    assert connector_b.name not in response.text


@pytest.mark.parametrize("url_name", ["connectors:list"])
def test_other_organisation_is_404(alice_client, connector_b, url_name):
    assert alice_client.get(reverse(url_name, args=["globex"])).status_code == 404


def test_other_organisations_connector_is_404_even_under_own_slug(alice_client, connector_b):
    assert (
        alice_client.get(reverse("connectors:detail", args=["acme", connector_b.pk])).status_code
        == 404
    )
    assert (
        alice_client.get(reverse("connectors:detail", args=["globex", connector_b.pk])).status_code
        == 404
    )


def test_platform_admin_sees_both_organisations(root_client, connector_a, connector_b):
    for org, connector in (("acme", connector_a), ("globex", connector_b)):
        response = root_client.get(reverse("connectors:detail", args=[org, connector.pk]))
        assert response.status_code == 200
        assert connector.name in response.text


def test_anonymous_is_sent_to_login(client, connector_a):
    response = client.get(reverse("connectors:list", args=["acme"]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_logs_in(client, alice, connector_a):
    from .conftest import PASSWORD

    response = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert connector_a.name in response.text


def test_one_active_job_per_connector_is_enforced_by_the_database(connector_a):
    SyncJob.objects.create(connector=connector_a, kind=SyncJob.Kind.FULL)
    with pytest.raises(IntegrityError), transaction.atomic():
        SyncJob.objects.create(connector=connector_a, kind=SyncJob.Kind.FULL, status="RUNNING")
    # A finished job does not block the next one.
    SyncJob.objects.filter(connector=connector_a).update(status=SyncJob.Status.COMPLETED)
    SyncJob.objects.create(connector=connector_a, kind=SyncJob.Kind.INCREMENTAL)


def test_other_connectors_jobs_are_independent(connector_a, org_a):
    other = make_connector(org_a, name="Second site")
    SyncJob.objects.create(connector=connector_a, kind=SyncJob.Kind.FULL)
    SyncJob.objects.create(connector=other, kind=SyncJob.Kind.FULL)


def test_audit_events_are_append_only(connector_a, alice):
    event = record(connector_a, AuditEvent.Action.PAUSED, actor=alice)
    assert event.actor_name == "Alice"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


def test_audit_diff_redacts_the_key(connector_a):
    before = snapshot(connector_a)
    connector_a.api_key = "a-brand-new-key-value"
    connector_a.name = "Renamed"
    changes = diff(before, snapshot(connector_a))
    assert changes["name"] == {"before": "Acme Association site", "after": "Renamed"}
    assert "a-brand-new-key-value" not in str(changes)
    assert "api_key" in changes


def test_csp_header_on_html(alice_client, connector_a):
    response = alice_client.get(reverse("connectors:list", args=["acme"]))
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
