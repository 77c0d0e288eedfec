"""Failing, recovering, and the two channels, with a real SMTP server and a real webhook
receiver: one message per state change, to the right organisation's admins only."""

import hashlib
import hmac

from django.core.management import call_command
from django.urls import reverse

from accounts.models import Membership, User
from notifications.models import (
    Channel,
    ConnectorHealth,
    Delivery,
    EmailMute,
    Event,
    Preference,
    WebhookEndpoint,
)
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import SIM_KEY, set_key


def add_webhook(organisation, url, secret="shared-secret"):
    endpoint = WebhookEndpoint(organisation=organisation, url=url)
    endpoint.set_secret(secret)
    endpoint.save()
    return endpoint


def test_five_failures_make_one_mail_and_the_good_sync_one_more(
    alice, connector, smtp, celery_eager, run
):
    set_key(connector, "wrong-key-" + "x" * 30)
    jobs = [run(connector) for _ in range(5)]
    assert {job.status for job in jobs} == {SyncJob.Status.FAILED}
    assert connector.status == "ERROR"

    mails = smtp.to("alice@acme.example")
    assert len(mails) == 1
    mail = mails[0]
    assert mail["subject"] == "[Association App] Acme main site: sync failed"
    assert mail["from"] == "alerts@platform.example"
    # What happened, the error in words, since when, and the link to the (first) job.
    assert "The sync of Acme main site failed at" in mail["body"]
    assert jobs[0].error in mail["body"]
    assert jobs[0].get_absolute_url() in mail["body"]
    health = ConnectorHealth.objects.get(connector=connector)
    assert health.consecutive_failures == 5
    assert health.failure_cause == ConnectorHealth.Cause.WRONG_KEY

    set_key(connector, SIM_KEY)
    assert run(connector).status == SyncJob.Status.COMPLETED
    mails = smtp.to("alice@acme.example")
    assert len(mails) == 2
    assert mails[1]["subject"] == "[Association App] Acme main site: syncing again"
    assert "after 5 failed syncs since" in mails[1]["body"]
    # A good sync after a good sync says nothing.
    run(connector, SyncJob.Kind.INCREMENTAL)
    assert len(smtp.to("alice@acme.example")) == 2

    sent = Delivery.objects.filter(organisation=connector.organisation).order_by("id")
    assert [(d.event, d.channel, d.recipient, d.status) for d in sent] == [
        (Event.ERROR, Channel.EMAIL, "alice@acme.example", Delivery.Status.SENT),
        (Event.RECOVERED, Channel.EMAIL, "alice@acme.example", Delivery.Status.SENT),
    ]


def test_an_organisation_never_receives_another_organisations_notifications(
    alice, bob, connector, connector_b, smtp, receiver, celery_eager, run
):
    add_webhook(connector_b.organisation, receiver.url)
    set_key(connector, "wrong-key-" + "x" * 30)
    run(connector)
    assert len(smtp.to("alice@acme.example")) == 1
    assert smtp.to("bob@globex.example") == []
    assert receiver.requests == []
    assert not Delivery.objects.filter(organisation=connector_b.organisation).exists()


def test_the_webhook_gets_signed_slack_compatible_json(
    alice, connector, smtp, receiver, celery_eager, run
):
    add_webhook(connector.organisation, receiver.url, secret="s3cret-for-hmac")
    set_key(connector, "wrong-key-" + "x" * 30)
    job = run(connector)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    expected = hmac.new(b"s3cret-for-hmac", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Association-Signature"] == "sha256=" + expected
    assert request["headers"]["Content-Type"] == "application/json"
    payload = receiver.json()
    assert payload["text"].startswith("[Association App] Acme main site: sync failed")
    assert job.error in payload["text"]
    assert payload["event"] == "error"
    assert payload["connector"] == {"id": connector.pk, "name": "Acme main site"}
    assert payload["job"]["id"] == job.pk
    webhook = Delivery.objects.get(channel=Channel.WEBHOOK)
    assert (webhook.status, webhook.result, webhook.attempts) == (
        Delivery.Status.SENT,
        "HTTP 200",
        1,
    )


def test_a_receiver_that_is_down_is_retried_then_recorded_failed_and_nothing_else_suffers(
    alice, connector, smtp, receiver, celery_eager, run, settings
):
    settings.NOTIFICATIONS_MAX_RETRIES = 3
    receiver.status = 503
    add_webhook(connector.organisation, receiver.url)
    set_key(connector, "wrong-key-" + "x" * 30)
    job = run(connector)

    assert job.status == SyncJob.Status.FAILED  # the sync's own outcome, untouched
    assert len(receiver.requests) == 4  # the first attempt and three retries
    webhook = Delivery.objects.get(channel=Channel.WEBHOOK)
    assert webhook.status == Delivery.Status.FAILED
    assert webhook.attempts == 4
    assert "HTTP 503" in webhook.result
    # The email went out regardless.
    assert len(smtp.to("alice@acme.example")) == 1
    assert Delivery.objects.get(channel=Channel.EMAIL).status == Delivery.Status.SENT


def test_a_receiver_that_refuses_connections_is_recorded_failed(
    alice, connector, smtp, celery_eager, run, settings
):
    from tests.reliability.helpers import free_port

    settings.NOTIFICATIONS_MAX_RETRIES = 1
    add_webhook(connector.organisation, f"http://127.0.0.1:{free_port()}/nobody-listens")
    set_key(connector, "wrong-key-" + "x" * 30)
    run(connector)
    webhook = Delivery.objects.get(channel=Channel.WEBHOOK)
    assert (webhook.status, webhook.attempts) == (Delivery.Status.FAILED, 2)
    assert "could not be reached" in webhook.result
    assert len(smtp.to("alice@acme.example")) == 1


def test_a_webhook_to_an_internal_address_is_refused_when_private_hosts_are_off(
    alice, alice_client, connector, smtp, receiver, celery_eager, run, settings
):
    # The suite allows loopback (WEBHOOK_ALLOW_PRIVATE_HOSTS follows
    # WORDPRESS_ALLOW_PRIVATE_HOSTS=1) so the receiver above can run; production does not.
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    url = reverse("notifications:webhook_add", args=["acme"])
    for internal in (receiver.url, "http://10.0.0.7/hook", "http://169.254.169.254/latest"):
        response = alice_client.post(url, {"url": internal})
        assert response.status_code == 400
        assert "are not allowed" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()

    # One stored while it was allowed is still refused at send time, and never reached.
    add_webhook(connector.organisation, receiver.url)
    set_key(connector, "wrong-key-" + "x" * 30)
    run(connector)
    webhook = Delivery.objects.get(channel=Channel.WEBHOOK)
    assert webhook.status == Delivery.Status.FAILED
    assert "loopback address" in webhook.result
    assert receiver.requests == []


def test_a_muted_admin_gets_no_mail_the_other_admins_do(alice, connector, smtp, celery_eager, run):
    carol = User.objects.create_user("carol", "carol@acme.example", "pw-carol-123456")
    Membership.objects.create(user=carol, organisation=connector.organisation)
    EmailMute.objects.create(user=alice, organisation=connector.organisation)
    set_key(connector, "wrong-key-" + "x" * 30)
    run(connector)
    assert smtp.to("alice@acme.example") == []
    assert len(smtp.to("carol@acme.example")) == 1


def test_an_event_switched_off_for_email_still_goes_to_the_webhook(
    alice, connector, smtp, receiver, celery_eager, run
):
    Preference.objects.create(
        organisation=connector.organisation, event=Event.ERROR, channel=Channel.EMAIL, enabled=False
    )
    add_webhook(connector.organisation, receiver.url)
    set_key(connector, "wrong-key-" + "x" * 30)
    run(connector)
    assert smtp.messages == []
    assert len(receiver.requests) == 1


def test_a_cancelled_job_is_neither_a_failure_nor_a_recovery(
    alice, connector, smtp, celery_eager, django_capture_on_commit_callbacks
):
    from syncjobs import services

    with django_capture_on_commit_callbacks(execute=False):
        job = services.start_sync(connector, SyncJob.Kind.FULL)
    services.request_cancel(job, user=alice)
    from notifications.alerts import job_finished

    job.refresh_from_db()
    job_finished(job)
    assert smtp.messages == []
    assert not ConnectorHealth.objects.filter(connector=connector, consecutive_failures__gt=0)


def test_the_digest_replaces_immediate_mails_with_one_daily_mail(
    alice, connector, smtp, celery_eager, run, django_capture_on_commit_callbacks
):
    from notifications.models import OrganisationSettings

    OrganisationSettings.objects.create(organisation=connector.organisation, daily_digest=True)
    set_key(connector, "wrong-key-" + "x" * 30)
    run(connector)
    set_key(connector, SIM_KEY)
    run(connector)
    assert smtp.messages == []
    queued = Delivery.objects.filter(status=Delivery.Status.DIGEST)
    assert queued.count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check", "--digest")
    mails = smtp.to("alice@acme.example")
    assert len(mails) == 1
    assert mails[0]["subject"] == "[Association App] Acme Association: 2 notifications"
    assert "Acme main site: sync failed" in mails[0]["body"]
    assert "Acme main site: syncing again" in mails[0]["body"]
    assert Delivery.objects.filter(status=Delivery.Status.DIGESTED).count() == 2
    # Nothing left for the next digest.
    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check", "--digest")
    assert len(smtp.to("alice@acme.example")) == 1


def test_an_admin_without_an_address_and_a_connector_of_another_org_are_skipped(
    alice, org_b, smtp, celery_eager, ended
):
    alice.email = ""
    alice.save()
    other = make_connector(org_b, name="Globex site")
    ended(other, SyncJob.Status.FAILED)
    assert smtp.messages == []
