"""Helpers for dashboard view tests: job and log rows written directly, the way the engine
would leave them, so no worker is needed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from syncjobs.models import SyncJob, SyncLogEntry

KEY = "sync-key-acme-0123456789abcdef"  # connector_a's plaintext key (tests/conftest.py)


def make_job(connector, status=SyncJob.Status.COMPLETED, kind=SyncJob.Kind.FULL, **fields):
    now = timezone.now()
    defaults = {"created_at": now - timedelta(minutes=5)}
    if status != SyncJob.Status.PENDING:
        defaults["started_at"] = now - timedelta(minutes=4)
    if status in SyncJob.TERMINAL_STATUSES:
        defaults["finished_at"] = now - timedelta(minutes=2)
    defaults.update(fields)
    return SyncJob.objects.create(connector=connector, status=status, kind=kind, **defaults)


def make_log(
    job, count, *, start=1000, entity_type="article", operation="CREATE", status="SUCCESS", **extra
):
    """`count` log rows with external ids start, start+1, ... (ids ascend with them)."""
    rows = [
        SyncLogEntry(
            job=job,
            connector=job.connector,
            entity_type=entity_type,
            external_id=str(start + i),
            operation=operation,
            status=status,
            **extra,
        )
        for i in range(count)
    ]
    return SyncLogEntry.objects.bulk_create(rows)


@pytest.fixture
def job_a(connector_a):
    return make_job(
        connector_a,
        stats={
            "article": {"total": 10, "processed": 10, "created": 8, "updated": 2},
            "member": {"total": 5, "processed": 5, "created": 4, "failed": 1},
        },
    )


@pytest.fixture
def job_b(connector_b):
    return make_job(connector_b)
