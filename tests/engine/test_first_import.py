""" "Run Initial Import" is the one-time first import. A full sync (or the first scheduled
incremental) that completes imports everything too, so after it the initial import is refused
by the service exactly as the Overview stops offering it."""

import pytest

from syncjobs import services
from syncjobs.models import SyncJob


def test_a_completed_full_sync_is_the_first_import(sync, connector):
    assert services.first_import_done_at(connector) is None
    job = sync(connector, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.COMPLETED
    connector.refresh_from_db()
    assert connector.initial_import_done_at == job.finished_at
    with pytest.raises(services.InitialImportAlreadyDone, match="Use Run Full Sync"):
        services.start_sync(connector, SyncJob.Kind.INITIAL)
    # A full sync is still allowed, as often as the admin likes.
    assert services.start_sync(connector, SyncJob.Kind.FULL).status == SyncJob.Status.PENDING


def test_a_failed_first_sync_leaves_the_initial_import_available(sync, site, connector):
    connector.api_key = "wrong-key-0123456789abcdef0123"
    connector.save()
    job = sync(connector, SyncJob.Kind.FULL)
    assert job.status == SyncJob.Status.FAILED
    connector.refresh_from_db()
    assert connector.initial_import_done_at is None
    assert services.start_sync(connector, SyncJob.Kind.INITIAL).kind == SyncJob.Kind.INITIAL


def test_completed_jobs_from_before_the_rule_count_too(connector):
    """Connectors whose first completed sync predates the stamp: the job history decides."""
    from django.utils import timezone

    done = timezone.now()
    SyncJob.objects.create(
        connector=connector,
        kind=SyncJob.Kind.INCREMENTAL,
        status=SyncJob.Status.COMPLETED,
        started_at=done,
        finished_at=done,
    )
    assert services.first_import_done_at(connector) == done
    with pytest.raises(services.InitialImportAlreadyDone):
        services.start_sync(connector, SyncJob.Kind.INITIAL)
