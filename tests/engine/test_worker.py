"""End to end through a real Celery worker and Redis: the path a production sync takes."""

import time

import pytest
from django.conf import settings
from django.db import connections

from syncjobs import services
from syncjobs.models import SyncJob
from tests.conftest import make_connector

from .conftest import SIM_KEY


@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_a_sync_started_by_the_service(org_a, site, server):
    from celery.contrib.testing.worker import start_worker

    import syncjobs.tasks  # noqa: F401  (registers the tasks with the app)
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "set REDIS_URL for this test"
    connector = make_connector(
        org_a,
        name="Worker site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["member", "conference"],
    )
    app.control.purge()  # messages other tests left for jobs that no longer exist
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        job = services.start_sync(connector, SyncJob.Kind.FULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.is_terminal:
                break
            time.sleep(0.2)
    connections.close_all()

    assert job.status == SyncJob.Status.COMPLETED, job.error
    for entity_type in ("member", "conference"):
        counters = job.stats[entity_type]
        assert counters["total"] == counters["processed"] == site.count(entity_type)
        assert counters["created"] + counters["failed"] == site.count(entity_type)
        assert counters["failed"] >= site.bad_count(entity_type)
    assert job.stats["member"]["failed"] == site.bad_count("member")  # members have no slugs
    connector.refresh_from_db()
    assert connector.last_sync_at is not None
    assert set(connector.cursors) == {"member", "conference", "deletions"}
    assert connector.cursors["member"] == site.high_water_mark("member")
