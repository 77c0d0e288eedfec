"""The conflict inbox's answers against the simulator on PostgreSQL: a conflict arises as in
test_engine (WordPress edits a record, then the platform edits it too, then a sync keeps the
platform's edit), and each answer is carried out by a normal job run as the worker runs it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from connectors.models import Connector
from records.models import Article
from syncjobs import conflicts, services
from syncjobs.models import ConflictResolution, SyncJob, SyncLogEntry
from syncjobs.runner import run_job

from .conftest import log_for

Action = ConflictResolution.Action


def _conflict(sync, site, connector, *, refused=False, ahead=timedelta(seconds=5)):
    """One article edited in WordPress, then on the platform: the next sync logs CONFLICT.
    `refused`: two-way, WordPress refused the platform edit for good (a 4xx), the state in
    which a two-way connector keeps the edit without pushing it (SyncEngine._decide).
    `ahead`: how far the platform edit is dated after now (a WordPress edit made before that
    is a conflict; after it, simply newer)."""
    sync(connector)
    article_id = next(i for i in site.ids("article") if i not in site.bad_ids("article"))
    site.edit("article", ids=[article_id])
    edited = timezone.now() + ahead
    fields = {"title": "Edited on the platform", "platform_modified_at": edited}
    if refused:
        fields["push_refused_at"] = edited
    Article.objects.filter(external_id=str(article_id)).update(**fields)
    job = sync(connector, SyncJob.Kind.INCREMENTAL)
    row = log_for(job, "article", article_id)
    assert row.status == "CONFLICT"
    assert list(conflicts.unresolved(connector)) == [row]
    return article_id, row


def _run(sync, job):
    from connectors.wordpress_client import client_for

    client = client_for(job.connector, sleep=lambda seconds: None, max_retries=1)
    try:
        return run_job(job.pk, source=client)
    finally:
        client.close()


@pytest.fixture
def two_way(connector):
    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save()
    return connector


def test_take_wordpress_version_import_only(sync, site, connector, alice):
    article_id, row = _conflict(sync, site, connector)
    _done, job, refused = conflicts.resolve(connector, [row.pk], Action.TAKE_WORDPRESS, user=alice)
    assert refused == [] and job.scope == {"records": {"article": [str(article_id)]}}
    job = _run(sync, job)

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
    article = Article.objects.get(external_id=str(article_id))
    assert "(edited" in article.title and article.platform_modified_at is None
    assert list(conflicts.unresolved(connector)) == []
    event = AuditEvent.objects.filter(action=AuditEvent.Action.UPDATED).latest("id")
    assert event.actor == alice
    assert event.changes[f"Conflict on article {article_id}"]["after"] == (
        f"Took WordPress's version (job #{job.pk})"
    )


def test_keep_platform_version_import_only_writes_nothing(sync, site, connector, alice):
    article_id, row = _conflict(sync, site, connector)
    jobs = SyncJob.objects.count()
    done, job, refused = conflicts.resolve(connector, [row.pk], Action.KEEP_PLATFORM, user=alice)
    assert job is None and SyncJob.objects.count() == jobs
    assert Article.objects.get(external_id=str(article_id)).title == "Edited on the platform"
    assert site.writes == []
    assert list(conflicts.unresolved(connector)) == []
    # Resolved once: a second answer, either way, is refused and changes nothing.
    done, job, refused = conflicts.resolve(connector, [row.pk], Action.TAKE_WORDPRESS, user=alice)
    assert done == [] and job is None
    assert refused == [
        f"The conflict on article {article_id} was already resolved by alice "
        "(kept the platform version)."
    ]
    assert Article.objects.get(external_id=str(article_id)).platform_modified_at is not None


def test_keep_platform_version_two_way_pushes_it(sync, site, two_way, alice):
    article_id, row = _conflict(sync, site, two_way, refused=True)
    assert site.writes == []
    _done, job, _refused = conflicts.resolve(two_way, [row.pk], Action.KEEP_PLATFORM, user=alice)
    job = _run(sync, job)

    entry = log_for(job, "article", article_id)
    assert (entry.operation, entry.status) == ("SYNC", "SUCCESS"), entry.error
    assert [w["fields"].get("title") for w in site.writes] == ["Edited on the platform"]
    assert site.record("article", article_id)["title"] == "Edited on the platform"
    assert list(conflicts.unresolved(two_way)) == []


def test_take_wordpress_version_two_way_pushes_nothing(sync, site, two_way, alice):
    article_id, row = _conflict(sync, site, two_way, refused=True)
    _done, job, _refused = conflicts.resolve(two_way, [row.pk], Action.TAKE_WORDPRESS, user=alice)
    job = _run(sync, job)
    assert log_for(job, "article", article_id).status == "SUCCESS"
    assert site.writes == []
    assert "(edited" in Article.objects.get(external_id=str(article_id)).title


def test_a_job_in_flight_refuses_the_answer_and_writes_nothing(sync, site, connector, alice):
    article_id, row = _conflict(sync, site, connector)
    running = services.start_sync(connector, SyncJob.Kind.INCREMENTAL)
    with pytest.raises(services.SyncRefused):
        conflicts.resolve(connector, [row.pk], Action.TAKE_WORDPRESS, user=alice)
    assert not ConflictResolution.objects.exists()
    assert Article.objects.get(external_id=str(article_id)).platform_modified_at is not None
    assert list(conflicts.unresolved(connector)) == [row]
    assert SyncJob.objects.filter(status="PENDING").get() == running


def test_bulk_take_wordpress_is_one_job(sync, site, connector, alice):
    sync(connector)
    ids = [i for i in site.ids("article") if i not in site.bad_ids("article")][:3]
    site.edit("article", ids=ids)
    Article.objects.filter(external_id__in=[str(i) for i in ids]).update(
        title="Platform", platform_modified_at=timezone.now() + timedelta(seconds=5)
    )
    sync(connector, SyncJob.Kind.INCREMENTAL)
    rows = list(conflicts.unresolved(connector).order_by("id"))
    assert len(rows) == 3
    done, job, refused = conflicts.resolve(
        connector, [r.pk for r in rows], Action.TAKE_WORDPRESS, user=alice
    )
    assert len(done) == 3 and refused == []
    job = _run(sync, job)
    assert SyncLogEntry.objects.filter(job=job, status="SUCCESS").count() == 3
    assert not Article.objects.filter(title="Platform").exists()
    assert set(ConflictResolution.objects.values_list("job", flat=True)) == {job.pk}


def test_a_conflict_a_later_sync_settled_is_not_open_any_more(sync, site, connector, alice):
    article_id, row = _conflict(sync, site, connector)
    # The admin fixes it by hand: drops the platform edit, then syncs the record.
    Article.objects.filter(external_id=str(article_id)).update(platform_modified_at=None)
    _run(sync, services.sync_record(connector, "article", article_id))
    assert list(conflicts.unresolved(connector)) == []
    done, job, refused = conflicts.resolve(connector, [row.pk], Action.DISMISSED, user=alice)
    assert (done, job) == ([], None)
    assert refused == [
        f"The conflict on article {article_id} is no longer open: a later sync settled it."
    ]


def test_keep_platform_refused_when_two_way_policy_is_wordpress_wins(sync, site, two_way, alice):
    _article_id, row = _conflict(sync, site, two_way, refused=True)
    two_way.conflict_policy = Connector.ConflictPolicy.WORDPRESS_WINS
    two_way.save()
    with pytest.raises(services.SyncRefused, match="conflict policy is WordPress wins"):
        conflicts.resolve(two_way, [row.pk], Action.KEEP_PLATFORM, user=alice)
    assert list(conflicts.unresolved(two_way)) == [row]


# The answer is remembered: the next full sync meets the same WordPress version ----------------


def _full(sync, connector, article_id):
    job = sync(connector, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    return job, log_for(job, "article", article_id)


@pytest.mark.parametrize("action", [Action.KEEP_PLATFORM, Action.DISMISSED])
def test_kept_or_dismissed_conflict_does_not_come_back_until_wordpress_changes(
    sync, site, connector, alice, action
):
    article_id, row = _conflict(sync, site, connector, ahead=timedelta(hours=1))
    done, job, notes = conflicts.resolve(connector, [row.pk], action, user=alice)
    assert job is None and notes == []
    (answer,) = done
    assert answer.wordpress_hash and answer.wordpress_modified_at is not None

    # The same WordPress version, met again by a full walk (and by a preview): no conflict.
    job, entry = _full(sync, connector, article_id)
    assert (entry.operation, entry.status) == ("SKIP", "SKIPPED")
    assert "Conflict already answered by alice" in entry.error
    assert answer.get_action_display().lower() in entry.error
    assert job.stats["article"]["conflicts"] == 0
    assert list(conflicts.unresolved(connector)) == []
    assert Article.objects.get(external_id=str(article_id)).title == "Edited on the platform"
    dry = services.preview_sync(connector)
    dry = _run(sync, dry)
    assert dry.stats["article"]["conflicts"] == 0

    # WordPress edits the record again (before the platform edit's time): a new conflict.
    site.update("article", article_id, title="Rewritten in WordPress")
    job, entry = _full(sync, connector, article_id)
    assert (entry.operation, entry.status) == ("UPDATE", "CONFLICT")
    assert job.stats["article"]["conflicts"] == 1
    assert list(conflicts.unresolved(connector)) == [entry]
    assert Article.objects.get(external_id=str(article_id)).title == "Edited on the platform"


def test_taken_wordpress_version_is_applied_and_the_next_sync_raises_nothing(
    sync, site, connector, alice
):
    article_id, row = _conflict(sync, site, connector, ahead=timedelta(hours=1))
    _done, job, _notes = conflicts.resolve(connector, [row.pk], Action.TAKE_WORDPRESS, user=alice)
    _run(sync, job)
    wordpress_title = site.record("article", article_id)["title"]
    assert Article.objects.get(external_id=str(article_id)).title == wordpress_title

    job, entry = _full(sync, connector, article_id)
    assert (entry.operation, entry.status) == ("SKIP", "SKIPPED") and entry.error == ""
    assert job.stats["article"]["conflicts"] == 0
    assert list(conflicts.unresolved(connector)) == []


def test_an_answer_made_while_wordpress_cannot_be_asked_says_the_conflict_comes_back(
    sync, site, connector, alice
):
    article_id, row = _conflict(sync, site, connector, ahead=timedelta(hours=1))
    site_url = connector.site_url
    connector.site_url = "http://127.0.0.1:9"  # nothing listens there: connection refused
    connector.save()
    done, job, notes = conflicts.resolve(connector, [row.pk], Action.DISMISSED, user=alice)
    assert len(done) == 1 and job is None
    (note,) = notes
    assert note.startswith("WordPress could not be asked")
    assert "the next full sync raises the conflict again" in note
    assert done[0].wordpress_hash == ""

    connector.site_url = site_url
    connector.save()
    job, entry = _full(sync, connector, article_id)
    assert entry.status == "CONFLICT"  # as the admin was told
    assert list(conflicts.unresolved(connector)) == [entry]
