"""The other events: too many failed records, a much slower sync, stale data, auto-pause
(and Resume), and the shell interface the operators' checks rely on."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from connectors.models import Connector
from notifications.models import ConnectorHealth, Delivery, Event, OrganisationSettings
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import set_key


def stats(processed, failed):
    return {"article": {"total": processed, "processed": processed, "failed": failed}}


def subjects(smtp):
    return [m["subject"] for m in smtp.messages]


@pytest.mark.parametrize(
    ("processed", "failed", "alerted"),
    [
        (100, 12, True),  # 12 %, at least 10
        (100, 9, False),  # 9 %, but fewer than 10 records
        (1000, 40, False),  # at least 10, but 4 %
        (1000, 60, True),
    ],
)
def test_completed_with_too_many_failed_records(
    alice, connector_a, smtp, celery_eager, ended, processed, failed, alerted
):
    ended(connector_a, SyncJob.Status.COMPLETED, stats=stats(processed, failed))
    expected = (
        f"[Association App] Acme Association site: sync completed with {failed} failed records"
    )
    assert subjects(smtp) == ([expected] if alerted else [])


@pytest.mark.parametrize(
    ("minimum", "percent", "processed", "failed", "alerted"),
    [
        (3, 1, 100, 4, True),  # a stricter organisation hears of 4 failures in 100
        (10, 20, 100, 12, False),  # a laxer one does not hear of 12 %
        (10, 20, 100, 21, True),
        (50, 0, 1000, 49, False),  # any share, but fewer than its minimum
    ],
)
def test_the_failed_records_thresholds_are_the_organisations(
    alice, connector_a, smtp, celery_eager, ended, minimum, percent, processed, failed, alerted
):
    OrganisationSettings.objects.create(
        organisation=connector_a.organisation,
        failed_records_min=minimum,
        failed_records_percent=percent,
    )
    ended(connector_a, SyncJob.Status.COMPLETED, stats=stats(processed, failed))
    assert len(smtp.messages) == (1 if alerted else 0)


def test_failed_records_alert_once_until_a_sync_is_clean_again(
    alice, connector_a, smtp, celery_eager, ended
):
    job = ended(connector_a, SyncJob.Status.COMPLETED, stats=stats(100, 20))
    ended(connector_a, SyncJob.Status.COMPLETED, stats=stats(100, 30))
    assert len(smtp.messages) == 1
    assert "20 of 100 records could not be imported" in smtp.messages[0]["body"]
    assert job.get_absolute_url() in smtp.messages[0]["body"]
    ended(connector_a, SyncJob.Status.COMPLETED, stats=stats(100, 0))
    ended(connector_a, SyncJob.Status.COMPLETED, stats=stats(100, 15))
    assert len(smtp.messages) == 2


def history(connector, minutes, count=5, kind=SyncJob.Kind.INCREMENTAL, days_ago=0):
    now = timezone.now() - timedelta(hours=1, days=days_ago)
    for i in range(count):
        started = now - timedelta(hours=i + 1)
        SyncJob.objects.create(
            connector=connector,
            kind=kind,
            status=SyncJob.Status.COMPLETED,
            started_at=started,
            finished_at=started + timedelta(minutes=minutes),
        )


def test_a_sync_three_times_slower_than_its_median_and_over_two_minutes(
    alice, connector_a, smtp, celery_eager, ended
):
    history(connector_a, minutes=1)
    ended(connector_a, SyncJob.Status.COMPLETED, minutes=5)
    assert subjects(smtp) == [
        "[Association App] Acme Association site: sync took much longer than usual"
    ]
    assert "took 5.0 minutes (usually about 1.0)" in smtp.messages[0]["body"]
    ended(connector_a, SyncJob.Status.COMPLETED, minutes=6)  # still slow: no second mail
    assert len(smtp.messages) == 1


@pytest.mark.parametrize(
    ("usual", "this", "kind"),
    [
        (1, 2.5, SyncJob.Kind.INCREMENTAL),  # 2.5 × the median: not 3 ×
        (0.2, 1.5, SyncJob.Kind.INCREMENTAL),  # 7.5 ×, but under two minutes
        (1, 5, SyncJob.Kind.FULL),  # the history is of incremental syncs, not full ones
    ],
)
def test_not_slow(alice, connector_a, smtp, celery_eager, ended, usual, this, kind):
    history(connector_a, minutes=usual)
    ended(connector_a, SyncJob.Status.COMPLETED, minutes=this, kind=kind)
    assert smtp.messages == []


def age(connector, hours):
    Connector.objects.filter(pk=connector.pk).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )


def test_stale_data_is_notified_once_by_the_check(
    alice, org_a, smtp, celery_eager, django_capture_on_commit_callbacks, ended
):
    hourly = make_connector(org_a, name="Hourly", frequency=Connector.Frequency.HOURLY)
    manual = make_connector(org_a, name="Manual", frequency=Connector.Frequency.MANUAL)
    paused = make_connector(
        org_a, name="Paused", frequency=Connector.Frequency.HOURLY, status="PAUSED"
    )
    fresh = make_connector(org_a, name="Fresh", frequency=Connector.Frequency.HOURLY)
    for connector in (hourly, manual, paused, fresh):
        age(connector, 30)
    ended(fresh, SyncJob.Status.COMPLETED)
    # The hourly one synced well 3 hours ago: 2 × 1 h + 15 min grace have passed.
    old = SyncJob.objects.create(
        connector=hourly,
        kind=SyncJob.Kind.FULL,
        status=SyncJob.Status.COMPLETED,
        started_at=timezone.now() - timedelta(hours=3, minutes=1),
        finished_at=timezone.now() - timedelta(hours=3),
    )
    assert old.pk

    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check")
    assert subjects(smtp) == ["[Association App] Hourly: data is stale"]
    assert "has had no successful sync since" in smtp.messages[0]["body"]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check")
    assert len(smtp.messages) == 1  # still stale: not again

    # A good sync clears it; stale again later is a new notification.
    ended(hourly, SyncJob.Status.COMPLETED)
    assert ConnectorHealth.objects.get(connector=hourly).stale_since is None
    SyncJob.objects.filter(connector=hourly).update(finished_at=timezone.now() - timedelta(hours=5))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check")
    assert subjects(smtp).count("[Association App] Hourly: data is stale") == 2


def test_a_connector_that_never_synced_is_stale_from_its_creation(
    alice, org_a, smtp, celery_eager, django_capture_on_commit_callbacks
):
    daily = make_connector(org_a, name="Daily", frequency=Connector.Frequency.DAILY)
    age(daily, 47)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check")
    assert smtp.messages == []  # 47 h < 2 × 24 h + grace
    age(daily, 49)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("notifications_check")
    assert subjects(smtp) == ["[Association App] Daily: data is stale"]
    assert "has had no successful sync ever" in smtp.messages[0]["body"]


def failing_for(connector, hours):
    ConnectorHealth.objects.filter(connector=connector).update(
        failing_since=timezone.now() - timedelta(hours=hours)
    )


def test_auto_pause_after_n_failures_over_a_day_and_resume_clears_it(
    alice, alice_client, connector_a, smtp, celery_eager, ended
):
    OrganisationSettings.objects.create(
        organisation=connector_a.organisation, auto_pause_after_failures=3
    )
    ended(connector_a, SyncJob.Status.FAILED, error="The sync key was refused.")
    ended(connector_a, SyncJob.Status.FAILED, error="The sync key was refused.")
    failing_for(connector_a, 25)
    ended(connector_a, SyncJob.Status.FAILED, error="The sync key was refused.")

    connector_a.refresh_from_db()
    assert connector_a.status == Connector.Status.PAUSED
    assert connector_a.next_sync_at is None
    assert connector_a.status_message.startswith(
        "Paused automatically after 3 failed syncs in a row (failing since"
    )
    assert "The sync key was refused." in connector_a.status_message
    event = AuditEvent.objects.get(connector=connector_a, action=AuditEvent.Action.PAUSED)
    assert event.actor is None and event.actor_name == ""  # shown as "System"
    assert event.changes["status"] == {"before": "ERROR", "after": "PAUSED"}
    assert subjects(smtp) == [
        "[Association App] Acme Association site: sync failed",
        "[Association App] Acme Association site: paused automatically after repeated failures",
    ]
    page = alice_client.get(reverse("connectors:detail", args=["acme", connector_a.pk]))
    assert "Paused automatically after 3 failed syncs" in page.content.decode()
    audit = alice_client.get(reverse("connectors:audit", args=["acme", connector_a.pk]))
    assert "System" in audit.content.decode()

    alice_client.post(reverse("connectors:resume", args=["acme", connector_a.pk]))
    connector_a.refresh_from_db()
    assert connector_a.status == Connector.Status.ACTIVE
    assert connector_a.status_message == ""
    health = ConnectorHealth.objects.get(connector=connector_a)
    assert (health.auto_paused_at, health.consecutive_failures) == (None, 0)
    # The next failure counts from one again: no immediate re-pause.
    ended(connector_a, SyncJob.Status.FAILED)
    connector_a.refresh_from_db()
    assert connector_a.status == Connector.Status.ERROR


def test_no_auto_pause_before_a_day_of_failures_or_when_switched_off(
    alice, connector_a, connector_b, smtp, celery_eager, ended
):
    OrganisationSettings.objects.create(
        organisation=connector_a.organisation, auto_pause_after_failures=3
    )
    for _ in range(5):
        ended(connector_a, SyncJob.Status.FAILED)
    connector_a.refresh_from_db()
    assert connector_a.status == Connector.Status.ERROR  # 5 failures, but within minutes

    OrganisationSettings.objects.create(
        organisation=connector_b.organisation, auto_pause_after_failures=0
    )
    ended(connector_b, SyncJob.Status.FAILED)
    failing_for(connector_b, 100)
    for _ in range(20):
        ended(connector_b, SyncJob.Status.FAILED)
    connector_b.refresh_from_db()
    assert connector_b.status == Connector.Status.ERROR


def test_default_auto_pause_is_ten_failures_and_a_day(
    alice, connector_a, smtp, celery_eager, ended
):
    ended(connector_a, SyncJob.Status.FAILED)
    failing_for(connector_a, 24)
    for _ in range(8):
        ended(connector_a, SyncJob.Status.FAILED)
    connector_a.refresh_from_db()
    assert connector_a.status == Connector.Status.ERROR
    ended(connector_a, SyncJob.Status.FAILED)
    connector_a.refresh_from_db()
    assert connector_a.status == Connector.Status.PAUSED
    assert Delivery.objects.filter(event=Event.AUTO_PAUSED).count() == 1


def test_a_paused_connectors_failed_manual_sync_is_one_failed_notification(
    alice, connector_a, smtp, celery_eager, ended
):
    Connector.objects.filter(pk=connector_a.pk).update(status=Connector.Status.PAUSED)
    ended(connector_a, SyncJob.Status.FAILED)
    ended(connector_a, SyncJob.Status.FAILED)
    assert Delivery.objects.get().event == Event.FAILED
    assert "The connector is paused" in smtp.messages[0]["body"]


@pytest.mark.django_db(transaction=True)
def test_sync_command_on_a_wrong_key_fails_and_mails_once(alice, connector, smtp):
    """The operators' check: `manage.py sync <connector> --kind full --wait` with EMAIL_HOST
    and EMAIL_PORT pointing at an SMTP server (here the loopback one), no worker running.
    Real commits (transaction=True), so the deliveries run when the command's do."""
    from config.celery import app

    set_key(connector, "wrong-key-" + "y" * 30)
    for _ in range(2):
        with pytest.raises(CommandError, match="failed"):
            call_command("sync", str(connector.pk), "--kind", "full", "--wait")
    assert app.conf.task_always_eager is False  # the command left the app as it found it
    assert SyncJob.objects.filter(status=SyncJob.Status.FAILED).count() == 2
    mails = smtp.to("alice@acme.example")
    assert len(mails) == 1
    assert mails[0]["subject"] == "[Association App] Acme main site: sync failed"


def test_connectors_already_failing_at_deploy_are_not_announced_again(
    alice, connector_a, connector_b, smtp, celery_eager, ended
):
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "notifications.migrations.0002_health_of_connectors_already_failing"
    )
    Connector.objects.filter(pk=connector_a.pk).update(
        status=Connector.Status.ERROR, last_sync_at=timezone.now() - timedelta(hours=2)
    )
    migration.already_failing(apps, None)
    health = ConnectorHealth.objects.get()
    assert health.connector_id == connector_a.pk
    assert health.failing_since < timezone.now() - timedelta(hours=1)

    ended(connector_a, SyncJob.Status.FAILED)
    assert smtp.messages == []  # it was failing already
    ended(connector_a, SyncJob.Status.COMPLETED)
    assert subjects(smtp) == ["[Association App] Acme Association site: syncing again"]


def test_failure_causes_come_from_the_error_classes():
    from connectors import crypto
    from connectors.wordpress import errors
    from notifications.causes import cause_from_message, cause_of

    assert cause_of(errors.AuthenticationFailed("401")) == "wrong_key"
    assert cause_of(errors.PluginMissing("404")) == "plugin_missing"
    assert cause_of(errors.SyncDisabled("403")) == "plugin_missing"
    assert cause_of(errors.RateLimited("429")) == "rate_limited"
    assert cause_of(errors.SiteUnreachable("dns")) == "unreachable"
    assert cause_of(errors.RequestTimedOut("slow")) == "unreachable"
    assert cause_of(errors.ServerError("500")) == "site_error"
    assert cause_of(errors.InvalidResponse("junk")) == "site_error"
    assert cause_of(crypto.SecretUnreadable("rotated")) == "internal"
    assert cause_of(RuntimeError("bug")) == "internal"
    assert cause_from_message("The connector's field mapping is invalid: x") == "mapping"
    assert cause_from_message("The worker running this sync stopped responding") == "worker"


def test_a_job_swept_as_stale_is_one_failure_notification_with_the_worker_cause(
    alice, connector_a, smtp, celery_eager, django_capture_on_commit_callbacks
):
    from syncjobs.scheduler import sweep_stale

    old = timezone.now() - timedelta(hours=1)
    SyncJob.objects.create(
        connector=connector_a,
        kind=SyncJob.Kind.INCREMENTAL,
        status=SyncJob.Status.RUNNING,
        started_at=old,
        heartbeat_at=old,
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stale() == 1
    assert subjects(smtp) == ["[Association App] Acme Association site: sync failed"]
    assert "stopped responding" in smtp.messages[0]["body"]
    assert ConnectorHealth.objects.get(connector=connector_a).failure_cause == "worker"


def test_the_slow_median_is_of_the_last_twenty_jobs_only(
    alice, connector_a, smtp, celery_eager, ended
):
    # Older history was slow (10 min); the last 20 jobs took 1 min: 5 min is unusual now.
    history(connector_a, minutes=10, count=30, days_ago=3)
    history(connector_a, minutes=1, count=20)
    ended(connector_a, SyncJob.Status.COMPLETED, minutes=5)
    assert subjects(smtp) == [
        "[Association App] Acme Association site: sync took much longer than usual"
    ]


def test_beat_runs_the_stale_check_and_the_digest_by_the_names_the_worker_knows(
    alice, org_a, smtp, celery_eager, django_capture_on_commit_callbacks, settings
):
    """The beat entries name tasks the worker registers (a misspelt name is a check that
    silently never runs), and each does its work when beat sends it."""
    import importlib

    from config.celery import app

    for module in settings.CELERY_IMPORTS:
        importlib.import_module(module)
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"notifications.tasks.check", "notifications.tasks.send_digests"} <= entries
    assert entries <= set(app.tasks)

    OrganisationSettings.objects.create(organisation=org_a, daily_digest=True)
    hourly = make_connector(org_a, name="Hourly", frequency=Connector.Frequency.HOURLY)
    age(hourly, 3)
    with django_capture_on_commit_callbacks(execute=True):
        assert app.tasks["notifications.tasks.check"].apply().get() == 1
    assert smtp.messages == []  # queued for the digest
    with django_capture_on_commit_callbacks(execute=True):
        assert app.tasks["notifications.tasks.send_digests"].apply().get() == 1
    assert subjects(smtp) == ["[Association App] Acme Association: 1 notification"]
    assert "Hourly: data is stale" in smtp.messages[0]["body"]


def test_a_production_without_site_url_is_warned_that_mail_links_will_not_open(settings):
    from io import StringIO

    settings.DEBUG = False
    settings.SITE_URL = ""
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "notifications.W001" in out.getvalue()
    assert "SITE_URL is not set" in out.getvalue()

    settings.SITE_URL = "https://connectors.example.org"
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "notifications.W001" not in out.getvalue()
