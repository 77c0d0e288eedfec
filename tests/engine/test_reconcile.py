"""The periodic reconciliation: a full walk that repairs what the incremental syncs missed and
counts it as drift, shown on the Overview; and its scheduling."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from connectors.models import Connector
from records.models import Article, Company, Event
from syncjobs.models import SyncJob
from syncjobs.runner import finish
from syncjobs.scheduler import dispatch_due
from tests.conftest import make_connector

from .conftest import log_for, logs

RECONCILE = SyncJob.Kind.RECONCILE


def _good(site, entity_type):
    return [i for i in site.ids(entity_type) if i not in site.bad_ids(entity_type)]


def test_reconciliation_after_normal_incrementals_finds_no_drift(sync, site, connector):
    sync(connector)
    site.edit("article", 2)
    site.delete("event", 1)
    site.add("company", 1)
    incremental = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert incremental.totals()["updated"] == 2

    job = sync(connector, RECONCILE)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.drift == 0
    totals = job.totals()
    assert totals["processed"] == site.count()  # every record served was compared
    # One log row per record, though the catch-up logged some before the walk met them.
    rows = logs(job).exclude(external_id="")
    assert rows.count() == rows.values("entity_type", "external_id").distinct().count()
    assert rows.count() == site.count()
    assert not logs(job).exclude(operation="SKIP").exclude(status="FAILED").exists()


def test_reconciliation_finds_and_repairs_changes_made_behind_the_plugins_back(
    sync, site, connector, alice_client
):
    sync(connector)
    first, second = _good(site, "article")[:2]
    company = _good(site, "company")[0]
    gone = _good(site, "event")[0]
    # Direct SQL in WordPress: nothing an incremental sync reads moves.
    site.tamper("article", first, title="Changed behind the plugin's back")
    site.tamper("article", second, content="<p>Silently rewritten</p>")
    site.tamper("company", company, industry="Tampered industry")
    site.tamper_delete("event", gone)
    incremental = sync(connector, SyncJob.Kind.INCREMENTAL)
    assert incremental.totals()["updated"] == 0  # missed, as the incremental must
    assert Article.objects.get(external_id=str(first)).title != "Changed behind the plugin's back"

    job = sync(connector, RECONCILE)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.drift == 4
    assert job.stats["article"]["updated"] == 2 and job.stats["company"]["updated"] == 1
    assert job.stats["event"]["archived"] == 1
    assert Article.objects.get(external_id=str(first)).title == "Changed behind the plugin's back"
    assert "Silently rewritten" in Article.objects.get(external_id=str(second)).content
    assert Company.objects.get(external_id=str(company)).industry == "Tampered industry"
    assert Event.objects.get(external_id=str(gone)).archived_at is not None
    entry = log_for(job, "article", first)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    assert "Missed by the incremental syncs (drift)" in entry.error
    assert "a deletion missed by the incremental syncs" in log_for(job, "event", gone).error

    overview = alice_client.get(reverse("connectors:detail", args=["acme", connector.pk]))
    assert "4 changes missed by incremental syncs" in overview.content.decode()
    history = alice_client.get(reverse("connectors:history", args=["acme", connector.pk]))
    assert "4 changes missed by incremental syncs" in history.content.decode()
    page = alice_client.get(job.get_absolute_url()).content.decode()
    assert "Reconciliation #" in page and "4 changes missed by incremental syncs" in page

    # Repaired: the next reconciliation finds nothing, and the Overview says so.
    again = sync(connector, RECONCILE)
    assert again.drift == 0
    overview = alice_client.get(reverse("connectors:detail", args=["acme", connector.pk]))
    assert "No drift" in overview.content.decode()


def test_a_reconciliation_after_a_mapping_upgrade_restores_records_without_counting_drift(
    sync, site, connector, alice_client
):
    """Records stored by an older mapping (before contract 1.2's status fields, say) differ
    from what the current one stores although WordPress did not change: the first full walk
    rewrites them, and a reconciliation doing so reports no false drift."""
    from records.mapping import MAPPING_REVISION

    sync(connector)
    assert connector.mapping_revision == MAPPING_REVISION
    Connector.objects.filter(pk=connector.pk).update(mapping_revision=MAPPING_REVISION - 1)
    Article.objects.filter(connector=connector).update(status="", content_hash="old-mapping")

    job = sync(connector, RECONCILE)

    assert job.drift is None
    assert job.stats["article"]["updated"] > 0
    assert not logs(job, error__contains="drift").exists()
    assert not Article.objects.filter(connector=connector, status="").exists()
    connector.refresh_from_db()
    assert connector.mapping_revision == MAPPING_REVISION
    overview = alice_client.get(reverse("connectors:detail", args=["acme", connector.pk]))
    assert "differences found by this reconciliation are not drift" in overview.content.decode()
    assert sync(connector, RECONCILE).drift == 0  # counted again from the next one


def test_changes_since_the_last_incremental_are_not_drift(sync, site, connector):
    """The reconciliation catches up first, as an incremental would: an ordinary edit made
    after the last incremental is synced, not reported as missed."""
    sync(connector)
    edited = site.edit("article", 1)[0]
    site.delete("company", 1)

    job = sync(connector, RECONCILE)

    assert job.drift == 0
    assert "(edited" in Article.objects.get(external_id=str(edited)).title
    assert Company.objects.filter(connector=connector, archived_at__isnull=False).count() == 1


def test_sync_command_runs_a_reconciliation_and_prints_its_drift(site, connector, sync):
    sync(connector)
    site.tamper("article", _good(site, "article")[0], title="Tampered")
    out = StringIO()
    call_command(
        "sync", str(connector.pk), "--kind", "reconcile", "--wait", "--in-process", stdout=out
    )
    text = out.getvalue()
    assert "Drift: 1 change(s) missed by incremental syncs" in text
    assert "push_failed" in text and "pushed" in text


def test_a_reconciliation_before_the_first_import_is_refused(connector):
    from syncjobs.services import SyncRefused, start_sync

    with pytest.raises(SyncRefused, match="Nothing to reconcile yet: run the initial import"):
        start_sync(connector, RECONCILE)
    assert not SyncJob.objects.filter(connector=connector).exists()
    out = StringIO()
    with pytest.raises(CommandError, match="Nothing to reconcile yet"):
        call_command("sync", str(connector.pk), "--kind", "reconcile", stdout=out)


# --- Scheduling --------------------------------------------------------------------------------


def _due(organisation, name, **fields):
    now = timezone.now()
    fields.setdefault("next_sync_at", now + timedelta(hours=1))
    fields.setdefault("next_reconcile_at", now - timedelta(minutes=1))
    fields.setdefault("initial_import_done_at", now - timedelta(days=2))
    fields.setdefault("frequency", Connector.Frequency.HOURLY)
    return make_connector(organisation, name=name, **fields)


def test_scheduler_starts_due_reconciliations_of_scheduled_connectors_only(org_a):
    now = timezone.now()
    ready = _due(org_a, "ready")
    weekly = _due(org_a, "weekly", reconcile_frequency=Connector.Reconciliation.WEEKLY)
    both_due = _due(org_a, "both due", next_sync_at=now - timedelta(minutes=1))
    skipped = [
        _due(org_a, "paused", status=Connector.Status.PAUSED),
        _due(org_a, "manual", frequency=Connector.Frequency.MANUAL),
        _due(org_a, "off", reconcile_frequency=Connector.Reconciliation.OFF),
        _due(org_a, "later", next_reconcile_at=now + timedelta(minutes=5)),
    ]

    jobs = dispatch_due(now)

    kinds = {job.connector.name: job.kind for job in jobs}
    # One job per connector: the reconciliation catches up, so the due incremental waits.
    assert kinds == {"ready": RECONCILE, "weekly": RECONCILE, "both due": RECONCILE}
    ready.refresh_from_db()
    weekly.refresh_from_db()
    assert ready.next_reconcile_at == now + timedelta(days=1)
    assert weekly.next_reconcile_at == now + timedelta(weeks=1)
    both_due.refresh_from_db()
    assert both_due.next_sync_at < now  # still due: dispatched after the reconciliation
    for connector in skipped:
        assert not SyncJob.objects.filter(connector=connector).exists()
    assert dispatch_due(now) == []


def test_after_a_mapping_upgrade_the_next_due_sync_is_a_reconciliation_whatever_its_frequency(
    org_a,
):
    """Records stored before an upgrade of the mapping (a document without contract 1.2's
    status counts as not published) are rewritten by the next due sync, a full walk, not a
    day later at the first reconciliation, nor never when reconciliation is off."""
    from records.mapping import MAPPING_REVISION

    now = timezone.now()
    old = {"mapping_revision": MAPPING_REVISION - 1, "next_reconcile_at": None}
    due = _due(org_a, "due", next_sync_at=now - timedelta(minutes=1), **old)
    off = _due(
        org_a,
        "off",
        next_sync_at=now - timedelta(minutes=1),
        reconcile_frequency=Connector.Reconciliation.OFF,
        **old,
    )
    _due(org_a, "not due yet", **old)
    current = _due(
        org_a, "current", next_sync_at=now - timedelta(minutes=1), next_reconcile_at=None
    )
    assert current.mapping_revision == MAPPING_REVISION

    jobs = dispatch_due(now)

    kinds = {job.connector.name: job.kind for job in jobs}
    assert kinds == {"due": RECONCILE, "off": RECONCILE, "current": SyncJob.Kind.INCREMENTAL}
    due.refresh_from_db()
    off.refresh_from_db()
    assert due.next_reconcile_at == now + timedelta(days=1) and off.next_reconcile_at is None
    # Once a walk stored the records with the current mapping, the schedule is as usual.
    SyncJob.objects.all().delete()
    Connector.objects.filter(pk__in=[due.pk, off.pk]).update(mapping_revision=MAPPING_REVISION)
    assert {job.kind for job in dispatch_due(now)} == {SyncJob.Kind.INCREMENTAL}


def test_first_reconciliation_is_scheduled_a_day_after_the_first_completed_sync(org_a):
    connector = make_connector(org_a, name="new")
    assert connector.next_reconcile_at is None
    job = SyncJob.objects.create(connector=connector, kind="FULL", status="RUNNING")
    finish(job, SyncJob.Status.COMPLETED)
    connector.refresh_from_db()
    job.refresh_from_db()
    assert connector.next_reconcile_at == job.finished_at + timedelta(days=1)


def test_reconciliation_setting_is_audited_and_reschedules(alice_client, connector_a):
    from audit.models import AuditEvent
    from tests.dashboard.test_forms import settings_data

    url = reverse("connectors:settings", args=["acme", connector_a.pk])
    response = alice_client.post(
        url,
        settings_data(
            connector_a,
            reconcile_frequency=Connector.Reconciliation.WEEKLY,
            store_protected_content="on",
        ),
    )
    assert response.status_code == 302
    connector_a.refresh_from_db()
    assert connector_a.store_protected_content
    assert connector_a.next_reconcile_at > timezone.now() + timedelta(days=6)
    event = AuditEvent.objects.get(connector=connector_a, action="UPDATED")
    assert event.changes["reconcile_frequency"] == {"before": "1d", "after": "1w"}
    assert event.changes["store_protected_content"] == {"before": False, "after": True}
    page = alice_client.get(url).content.decode()
    assert "Store the content of password-protected posts" in page
    assert "Reconciliation" in page
    invalid = alice_client.post(url, settings_data(connector_a, reconcile_frequency="hourly"))
    assert invalid.status_code == 200
    assert "Select a valid choice" in invalid.content.decode()
