"""Data lifecycle (syncjobs/retention.py): per-record log rows go after
SYNC_LOG_RETENTION_DAYS, FAILED and CONFLICT rows after twice as long, jobs and their counters
stay, and a running sync's rows are never touched."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.retention import prune

S = SyncLogEntry.Status
STATUSES = (S.SUCCESS, S.SKIPPED, S.FAILED, S.CONFLICT)


def job_aged(connector, days, status=SyncJob.Status.COMPLETED):
    finished = timezone.now() - timedelta(days=days)
    job = SyncJob.objects.create(
        connector=connector,
        kind=SyncJob.Kind.FULL,
        status=status,
        created_at=finished,
        finished_at=None if status == SyncJob.Status.RUNNING else finished,
        stats={"article": {"processed": 8, "failed": 2}},
    )
    SyncLogEntry.objects.bulk_create(
        SyncLogEntry(
            job=job,
            connector=connector,
            entity_type="article",
            external_id=str(n),
            operation=SyncLogEntry.Operation.SKIP,
            status=STATUSES[n % 4],
            processed_at=finished,
        )
        for n in range(8)
    )
    return job


def statuses(job):
    return sorted(SyncLogEntry.objects.filter(job=job).values_list("status", flat=True))


def test_what_is_kept_and_what_is_removed(connector_a, settings):
    settings.SYNC_LOG_RETENTION_DAYS = 90
    recent = job_aged(connector_a, 30)
    old = job_aged(connector_a, 100)
    ancient = job_aged(connector_a, 200)
    result = prune(batch_size=3)  # several batches per job
    assert (result.jobs, result.rows) == (2, 4 + 8)
    assert len(statuses(recent)) == 8
    assert statuses(old) == ["CONFLICT", "CONFLICT", "FAILED", "FAILED"]
    assert statuses(ancient) == []
    # Job rows and their counters stay: Sync History still shows every job's figures.
    for job in (recent, old, ancient):
        job.refresh_from_db()
        assert job.stats == {"article": {"processed": 8, "failed": 2}}
    assert SyncJob.objects.get(pk=old.pk).log_kept == SyncJob.LogKept.FAILURES
    assert SyncJob.objects.get(pk=ancient.pk).log_kept == SyncJob.LogKept.NONE
    # A second run has nothing to do, and does not visit the pruned jobs again.
    assert prune().rows == 0


def test_a_running_sync_is_never_pruned(connector_a, settings):
    settings.SYNC_LOG_RETENTION_DAYS = 90
    running = job_aged(connector_a, 400, status=SyncJob.Status.RUNNING)
    assert prune().rows == 0
    assert len(statuses(running)) == 8


def test_retention_zero_keeps_everything(connector_a, settings):
    settings.SYNC_LOG_RETENTION_DAYS = 0
    old = job_aged(connector_a, 1000)
    assert prune().rows == 0 and len(statuses(old)) == 8


def test_the_command_says_what_it_removed(connector_a, settings, capsys):
    settings.SYNC_LOG_RETENTION_DAYS = 90
    job_aged(connector_a, 100)
    call_command("prune_sync_logs")
    out = capsys.readouterr().out
    assert "Removed 4 log rows of 1 jobs finished more than 90 days ago" in out
    call_command("prune_sync_logs", "--days", "0")
    assert "Retention is off" in capsys.readouterr().out


def test_a_paced_prune_removes_the_same_rows_and_a_bad_pace_is_refused(connector_a, settings):
    """The pace (sleeping after each batch as long as it took, by default) changes when rows
    go, never which."""
    from django.core.management.base import CommandError

    settings.SYNC_LOG_RETENTION_DAYS = 90
    old, older = job_aged(connector_a, 100), job_aged(connector_a, 200)
    assert prune(batch_size=3, yield_ratio=1.0).rows == 4 + 8
    assert statuses(old) == ["CONFLICT", "CONFLICT", "FAILED", "FAILED"]
    assert statuses(older) == []
    with pytest.raises(CommandError, match="--yield-ratio must be 0 or more"):
        call_command("prune_sync_logs", "--yield-ratio", "-1")


@pytest.mark.django_db(transaction=True)
def test_a_sync_running_meanwhile_completes_with_its_whole_log(org_a, settings):
    """Pruning in small batches while a real sync writes its log: the sync is unaffected."""
    import threading

    from django.db import connections

    from connectors.wordpress import contract
    from connectors.wordpress_client import client_for
    from syncjobs import services
    from syncjobs.runner import run_job
    from tests.conftest import make_connector
    from wpsim import SimulatedSite, serve

    settings.SYNC_LOG_RETENTION_DAYS = 90
    key = "retention-test-key-0123456789abcdef0123456789"
    site = SimulatedSite(records=600, seed=5, key=key)
    with serve(site, host="127.0.0.1", port=0) as server:
        connector = make_connector(
            org_a, site_url=server.url, api_key=key, entity_types=list(contract.ENTITY_TYPES)
        )
        old = [job_aged(connector, 200) for _ in range(30)]
        job = services.start_sync(connector, SyncJob.Kind.FULL)
        pruned = []

        def pruning():
            try:
                pruned.append(prune(batch_size=2))
            finally:
                connections.close_all()  # this thread's connection

        pruner = threading.Thread(target=pruning)
        with client_for(connector) as client:
            pruner.start()
            finished = run_job(job.pk, source=client)
        pruner.join(60)
    assert finished.status == SyncJob.Status.COMPLETED, finished.error
    assert SyncLogEntry.objects.filter(job=job).count() == 600
    assert pruned[0].rows == 30 * 8
    assert all(statuses(j) == [] for j in old)


def test_the_job_page_says_how_long_log_rows_are_kept(alice_client, connector_a, settings):
    from django.urls import reverse

    settings.SYNC_LOG_RETENTION_DAYS = 90
    ancient = job_aged(connector_a, 200)
    prune()
    url = reverse("syncjobs:detail", args=["acme", connector_a.pk, ancient.pk])
    page = alice_client.get(url).text
    assert "Log rows older than 90 days are removed (failed and conflict rows after 180 days)" in (
        page
    )
    assert "This job's log rows were removed after 180 days" in page
