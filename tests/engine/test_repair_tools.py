"""The repair tools (SyncJob.scope and SyncJob.dry_run) against the simulator on PostgreSQL:
retry a job's failed records, re-sync one type, sync one record, and the preview (dry run).

Each runs as the worker runs it (services start the job, runner.run_job runs it); the last
test goes through a real `celery worker` process and the `sync` command's new options.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from connectors.models import Connector
from connectors.wordpress_client import client_for
from records.models import Document, Event, Member
from syncjobs import services
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import run_job
from tests.conftest import make_connector

from .conftest import SIM_KEY, log_for, logs
from .test_worker import running_worker


def run(job):
    """Run a started job in this process, with the job's connector's real client."""
    client = client_for(job.connector, sleep=lambda seconds: None, max_retries=1)
    try:
        return run_job(job.pk, source=client)
    finally:
        client.close()


@pytest.fixture
def small(org_a, server):
    return make_connector(
        org_a,
        name="Repair site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "event", "document"],
    )


def good(site, entity_type):
    return [i for i in site.ids(entity_type) if i not in site.bad_ids(entity_type)]


def snapshot(connector):
    """Everything a sync may write for the connector: records, log rows, cursors."""
    connector.refresh_from_db()
    rows = []
    for model in (Member, Event, Document):
        rows += list(
            model.objects.filter(connector=connector)
            .order_by("external_id")
            .values_list("external_id", "content_hash", "archived_at", "last_synced_at")
        )
    log = list(SyncLogEntry.objects.filter(connector=connector).values_list("id", "status"))
    return rows, log, connector.cursors


def test_retry_fetches_only_the_failed_records_and_decides_each_again(site, small):
    run(services.start_sync(small, SyncJob.Kind.FULL))
    (bad_member,) = site.bad_ids("member")
    stored_then_broken = good(site, "member")[0]
    site.update("member", stored_then_broken, email=None)
    (bad_event,) = site.bad_ids("event")
    (bad_document,) = site.bad_ids("document")
    failed_job = run(services.start_sync(small, SyncJob.Kind.FULL))
    assert log_for(failed_job, "member", stored_then_broken).status == "FAILED"

    # Meanwhile in WordPress: one fixed, one deleted after it was stored, one deleted before
    # it ever was, one still broken.
    site.update("member", bad_member, email="fixed@example.org")
    site.delete("member", ids=[stored_then_broken])
    site.delete("document", ids=[bad_document])
    retry = services.retry_failed(failed_job)
    assert retry.description == f"Retry of job #{failed_job.pk}'s failed records"
    job = run(retry)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert logs(job).count() == 4  # those records only, one row each
    fixed = log_for(job, "member", bad_member)
    assert (fixed.operation, fixed.status) == ("CREATE", "SUCCESS")
    assert Member.objects.get(external_id=str(bad_member)).email == "fixed@example.org"
    gone = log_for(job, "member", stored_then_broken)
    assert (gone.operation, gone.status) == ("ARCHIVE", "SUCCESS")
    assert "Not served by WordPress any more" in gone.error
    assert Member.objects.get(external_id=str(stored_then_broken)).archived_at is not None
    never = log_for(job, "document", bad_document)
    assert (never.operation, never.status) == ("SKIP", "SKIPPED")
    assert "WordPress does not serve this record" in never.error
    still = log_for(job, "event", bad_event)
    assert (still.operation, still.status) == ("CREATE", "FAILED")
    assert f"event {bad_event}" in still.error and "start_gmt" in still.error
    assert job.stats["member"]["total"] == 2 and job.stats["event"]["failed"] == 1

    # The retry's own failure can be retried; a job without failures cannot.
    site.update("event", bad_event, start_gmt=site.record("event", bad_event)["end_gmt"])
    again = services.retry_failed(job)
    assert again.scope["records"] == {"event": [str(bad_event)]}
    again = run(again)
    assert log_for(again, "event", bad_event).status == "SUCCESS"
    with pytest.raises(services.SyncRefused, match=f"Job #{again.pk} has no failed records"):
        services.retry_failed(again)


def test_resync_of_one_type_leaves_the_others_untouched(site, small):
    run(services.start_sync(small, SyncJob.Kind.FULL))
    member_id, event_id = good(site, "member")[0], good(site, "event")[0]
    # Direct SQL edits in WordPress: only a full walk of the type sees them.
    site.tamper("member", member_id, first_name="Walked")
    site.tamper("event", event_id, title="Not walked")
    small.refresh_from_db()
    before = dict(small.cursors)
    last_sync = small.last_sync_at

    job = run(services.resync_types(small, ["member"]))

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.description == "Full sync of member only"
    assert set(job.stats) == {"member"}
    assert logs(job).exclude(entity_type="member").count() == 0
    assert log_for(job, "member", member_id).operation == "UPDATE"
    assert Member.objects.get(external_id=str(member_id)).first_name == "Walked"
    assert Event.objects.get(external_id=str(event_id)).title != "Not walked"
    small.refresh_from_db()
    assert {k: v for k, v in small.cursors.items() if "member" not in k} == {
        k: v for k, v in before.items() if "member" not in k
    }
    assert small.last_sync_at == last_sync  # a partial job is not the connector's last sync

    with pytest.raises(services.SyncRefused, match="Article is not enabled for this connector"):
        services.resync_types(small, ["article"])
    with pytest.raises(services.SyncRefused, match="Unknown entity type 'members'"):
        services.resync_types(small, ["members"])


def test_sync_one_record_and_a_record_that_does_not_exist(site, small):
    run(services.start_sync(small, SyncJob.Kind.FULL))
    member_id = good(site, "member")[0]
    site.tamper("member", member_id, first_name="Just this one")

    job = run(services.sync_record(small, "member", member_id))

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.description == f"Sync of member {member_id}"
    (entry,) = logs(job)
    assert (entry.external_id, entry.operation, entry.status) == (
        str(member_id),
        "UPDATE",
        "SUCCESS",
    )
    assert Member.objects.get(external_id=str(member_id)).first_name == "Just this one"

    missing = run(services.sync_record(small, "member", 987654))
    assert missing.status == SyncJob.Status.FAILED
    assert "WordPress has no member with id 987654" in missing.error
    assert not Member.objects.filter(external_id="987654").exists()
    small.refresh_from_db()
    assert small.status != Connector.Status.ERROR  # one wrong id is not a broken connector

    with pytest.raises(services.SyncRefused, match="'abc' is not a WordPress id"):
        services.sync_record(small, "member", "abc")
    with pytest.raises(services.SyncRefused, match="Article is not enabled"):
        services.sync_record(small, "article", 1)


def test_preview_counts_what_a_full_sync_would_do_and_writes_nothing(site, small):
    run(services.start_sync(small, SyncJob.Kind.FULL))
    site.edit("member", ids=good(site, "member")[:2])
    site.add("event", 1)
    site.tamper_delete("document", good(site, "document")[0])  # no deletion entry: walk finds it
    before = snapshot(small)

    preview = services.preview_sync(small)
    assert preview.description == "Preview of a full sync (nothing written)"
    job = run(preview)

    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert snapshot(small) == before  # records, the record log and cursors unchanged
    assert logs(job).count() == 0
    member, event, document = job.stats["member"], job.stats["event"], job.stats["document"]
    assert (member["updated"], member["failed"], member["created"]) == (2, 1, 0)
    assert member["skipped"] == site.count("member") - 3
    assert event["created"] == 1 and event["failed"] == 1
    assert document["archived"] == 1
    (failure,) = job.preview_failures["member"]
    assert failure[0] == str(next(iter(site.bad_ids("member"))))
    assert "email" in failure[1]


def test_preview_before_the_first_import_and_on_a_two_way_connector(site, small):
    job = run(services.preview_sync(small))
    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert job.stats["member"]["created"] == site.count("member") - 1
    assert not Member.objects.exists() and not SyncLogEntry.objects.exists()
    # The preview imported nothing: the first import is still to run.
    assert services.first_import_done_at(small) is None
    small.refresh_from_db()
    assert small.initial_import_done_at is None and small.last_sync_at is None

    small.sync_direction = Connector.Direction.TWO_WAY
    small.save()
    run(services.start_sync(small, SyncJob.Kind.INITIAL))
    member_id = good(site, "member")[0]
    Member.objects.filter(external_id=str(member_id)).update(
        first_name="Edited here", platform_modified_at=timezone.now() + timedelta(seconds=5)
    )
    job = run(services.preview_sync(small))
    assert job.stats["member"]["pushed"] == 1
    assert site.writes == []  # nothing sent to WordPress either
    assert Member.objects.get(external_id=str(member_id)).platform_modified_at is not None


def test_one_job_in_flight_per_connector_holds_for_every_tool(site, small):
    first = run(services.start_sync(small, SyncJob.Kind.FULL))
    running = services.start_sync(small, SyncJob.Kind.INCREMENTAL)
    for start in (
        lambda: services.retry_failed(first),
        lambda: services.resync_types(small, ["member"]),
        lambda: services.sync_record(small, "member", good(site, "member")[0]),
        lambda: services.preview_sync(small),
    ):
        with pytest.raises(services.SyncAlreadyRunning, match=f"job #{running.pk}"):
            start()
    assert SyncJob.objects.filter(connector=small).count() == 2


@pytest.fixture
def worker(tmp_path):
    yield from running_worker(tmp_path)


@pytest.mark.django_db(transaction=True)
def test_sync_command_options_through_a_real_worker(org_a, site, server, worker):
    connector = make_connector(
        org_a,
        name="Command repair site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "conference"],
    )

    def sync(*options):
        out = StringIO()
        call_command("sync", str(connector.pk), *options, "--wait", stdout=out)
        text = out.getvalue()
        assert "No worker answered" not in text  # the worker ran it
        return text, SyncJob.objects.filter(connector=connector).first()

    text, full = sync("--kind", "full")
    assert f"Job #{full.pk}: COMPLETED" in text

    text, preview = sync("--kind", "full", "--dry-run")
    assert f"Job #{preview.pk} (Preview of a full sync (nothing written))" in text
    assert "Would fail: member" in text and "email" in text
    assert "Preview only: no record and no sync log row was written." in text
    assert preview.dry_run and not logs(preview).exists()

    text, only = sync("--kind", "full", "--only", "member")
    assert f"Job #{only.pk} (Full sync of member only)" in text
    assert "conference" not in text.split("queued", 1)[1]
    assert set(only.stats) == {"member"}

    (bad,) = site.bad_ids("member")
    site.update("member", bad, email="fixed@example.org")
    text, retry = sync("--retry-failed", str(full.pk))
    assert f"Job #{retry.pk}: COMPLETED" in text
    assert log_for(retry, "member", bad).status == "SUCCESS"

    member_id = site.ids("member")[0]
    text, one = sync("--record", f"member:{member_id}")
    assert f"Job #{one.pk} (Sync of member {member_id})" in text
    assert logs(one).count() == 1

    with pytest.raises(CommandError, match="WordPress has no member with id 999999"):
        sync("--record", "member:999999")
    with pytest.raises(CommandError, match="--only and --dry-run need --kind full"):
        sync("--only", "member")
    with pytest.raises(CommandError, match="Event is not enabled"):
        sync("--kind", "full", "--only", "event")
    with pytest.raises(CommandError, match="--record takes TYPE:WORDPRESS_ID"):
        sync("--record", "member")


def test_deletion_guard_holds_too_many_archives_until_an_admin_decides(site, small, alice):
    from audit.models import AuditEvent
    from syncjobs import deletion_guard
    from syncjobs.models import HeldDeletion

    small.deletion_guard_minimum = 5
    small.save()
    run(services.start_sync(small, SyncJob.Kind.FULL))
    live = Member.objects.filter(connector=small, archived_at__isnull=True).count()
    # Below the guard (2 of ~59): archived as usual.
    few = good(site, "member")[:2]
    for member_id in few:
        site.tamper_delete("member", member_id)
    job = run(services.start_sync(small, SyncJob.Kind.FULL))
    assert job.error == "" and job.stats["member"]["archived"] == 2
    # An emptied type (10 of the rest, over 10 % and at least 5): held.
    many = good(site, "member")[:10]
    for member_id in many:
        site.tamper_delete("member", member_id)
    held_job = run(services.start_sync(small, SyncJob.Kind.FULL))

    assert held_job.status == SyncJob.Status.COMPLETED
    assert held_job.error == "10 deletions held for review"
    assert held_job.stats["member"]["archived"] == 0
    assert Member.objects.filter(external_id__in=map(str, many), archived_at=None).count() == 10
    note = logs(held_job, entity_type="member", external_id="").get()
    assert f"10 of {live - 2} member records are no longer served" in note.error
    (held,) = deletion_guard.pending(small)
    assert sorted(held.external_ids) == sorted(map(str, many)) and held.job_id == held_job.pk
    # The next sync holds them again (a new batch): nothing is archived behind the admin's back.
    again = run(services.start_sync(small, SyncJob.Kind.FULL))
    assert again.error == "10 deletions held for review"
    first, second = HeldDeletion.objects.order_by("pk")
    deletion_guard.decide(small, second.pk, approve=False, user=alice)

    decided = deletion_guard.decide(small, first.pk, approve=True, user=alice)
    assert (decided.decision, decided.archived) == ("APPROVED", 10)
    assert not Member.objects.filter(external_id__in=map(str, many), archived_at=None).exists()
    archive_row = log_for(held_job, "member", many[0])
    assert (archive_row.operation, archive_row.status) == ("ARCHIVE", "SUCCESS")
    assert "archived when Alice approved" in archive_row.error
    with pytest.raises(services.SyncRefused, match="already decided by alice"):
        deletion_guard.decide(small, first.pk, approve=False, user=alice)
    events = AuditEvent.objects.filter(action=AuditEvent.Action.UPDATED, actor=alice)
    assert {next(iter(e.changes.values()))["after"] for e in events} == {
        "approved: 10 archived",
        "discarded: records kept",
    }
    assert not deletion_guard.pending(small).exists()


def test_repair_tools_refuse_types_that_are_not_enabled(site, small):
    """Refused when asked, and a repair job whose type was disabled while it waited for a
    worker syncs nothing and says why."""
    first = run(services.start_sync(small, SyncJob.Kind.FULL))
    assert logs(first, entity_type="member", status="FAILED").exists()
    resync = services.resync_types(small, ["member"])
    small.entity_types = ["event", "document"]  # member disabled meanwhile
    small.save()
    before = snapshot(small)
    resync = run(resync)
    assert resync.status == SyncJob.Status.FAILED
    assert resync.error == (
        "Member is no longer enabled for this connector: nothing was synced. "
        "Enable it in Settings → What to Sync first."
    )
    assert snapshot(small)[:2] == before[:2] and not logs(resync).exists()

    for start in (
        lambda: services.resync_types(small, ["member"]),
        lambda: services.sync_record(small, "member", good(site, "member")[0]),
        lambda: services.preview_sync(small, entity_types=["member"]),
    ):
        with pytest.raises(services.SyncRefused, match="Member is not enabled for this connector"):
            start()
    # A retry leaves out the failed records of types disabled since; of none, it is refused.
    small.entity_types = ["conference"]
    small.save()
    with pytest.raises(services.SyncRefused, match="of types no longer enabled"):
        services.retry_failed(SyncJob.objects.get(pk=first.pk))
    small.entity_types = ["event", "document"]
    small.save()
    retry = services.retry_failed(SyncJob.objects.get(pk=first.pk))
    assert set(retry.scope["records"]) == {"event", "document"}
    assert SyncJob.objects.filter(connector=small).count() == 3


@pytest.mark.django_db(transaction=True)
def test_deletion_guard_through_a_real_worker_survives_its_restart(
    org_a, site, server, worker, alice
):
    from syncjobs import deletion_guard

    from .test_worker import finished, wait_for

    connector = make_connector(
        org_a,
        name="Guarded site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member"],
        deletion_guard_minimum=5,
    )

    def full():
        job = wait_for(services.start_sync(connector, SyncJob.Kind.FULL), finished, worker=worker)
        assert job.status == SyncJob.Status.COMPLETED, job.error
        return job

    full()
    many = good(site, "member")[:10]
    for member_id in many:
        site.tamper_delete("member", member_id)
    held_job = full()
    assert held_job.error == "10 deletions held for review"
    assert held_job.stats["member"]["archived"] == 0

    worker.stop()  # a redeploy: the held batch is in PostgreSQL, not in the worker
    worker.start()
    (held,) = deletion_guard.pending(connector)
    assert held.job_id == held_job.pk and sorted(held.external_ids) == sorted(map(str, many))
    assert full().error == "10 deletions held for review"  # held again, still not archived
    assert Member.objects.filter(external_id__in=map(str, many), archived_at=None).count() == 10

    first, second = deletion_guard.pending(connector).order_by("pk")
    assert deletion_guard.decide(connector, first.pk, approve=True, user=alice).archived == 10
    deletion_guard.decide(connector, second.pk, approve=False, user=alice)
    assert not Member.objects.filter(external_id__in=map(str, many), archived_at=None).exists()
    with pytest.raises(services.SyncRefused, match="already decided by alice"):
        deletion_guard.decide(connector, first.pk, approve=False, user=alice)
    # Decided: the next sync through the worker has nothing left to hold.
    assert full().error == "" and not deletion_guard.pending(connector).exists()
