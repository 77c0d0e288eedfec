"""Fairness: long walks (initial import, full sync, reconciliation) go to the `bulk` Celery
queue and incremental syncs to the default one, so a worker of the default queue never sits
behind a large import (syncjobs/routing.py). Checked on the real broker (Redis)."""

import json

import pytest
import redis
from django.conf import settings

from push.models import PushChannel
from push.tasks import start_pushed_sync
from syncjobs import services
from syncjobs.models import SyncJob
from tests.conftest import make_connector

# This process's pair (each xdist worker has its own: config/test_settings.py).
DEFAULT, BULK = settings.CELERY_TASK_DEFAULT_QUEUE, settings.SYNC_BULK_QUEUE
QUEUES = (DEFAULT, BULK)


@pytest.fixture
def broker():
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "set REDIS_URL for this test"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUES)  # what other tests left
    yield client
    client.delete(*QUEUES)


def queued_jobs(broker, queue):
    """The job ids of the run_sync_job messages waiting in a queue (kombu's Redis list)."""
    ids = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == "syncjobs.tasks.run_sync_job":
            ids.append(message["headers"]["argsrepr"].strip("(),[] "))
    return sorted(int(i) for i in ids)


@pytest.mark.django_db(transaction=True)
def test_imports_and_full_syncs_wait_on_their_own_queue(broker, org_a, org_b):
    big = make_connector(org_a, name="Big import")
    small = make_connector(org_b, name="Small site")
    initial = services.start_sync(big, SyncJob.Kind.INITIAL)
    incremental = services.start_sync(small, SyncJob.Kind.INCREMENTAL)
    assert queued_jobs(broker, BULK) == [initial.pk]
    assert queued_jobs(broker, DEFAULT) == [incremental.pk]

    SyncJob.objects.filter(pk=initial.pk).update(status=SyncJob.Status.CANCELLED)
    full = services.start_sync(big, SyncJob.Kind.FULL)
    assert queued_jobs(broker, BULK) == [initial.pk, full.pk]


@pytest.mark.django_db(transaction=True)
def test_a_pushed_sync_and_a_scheduled_one_go_to_the_incremental_queue(broker, org_a):
    connector = make_connector(org_a)
    PushChannel.for_connector(connector)
    start_pushed_sync(connector.pk)
    pushed = SyncJob.objects.get(connector=connector)
    assert queued_jobs(broker, DEFAULT) == [pushed.pk]
    assert queued_jobs(broker, BULK) == []


def test_a_worker_without_queues_consumes_both():
    """The demo's and the tests' workers (no -Q) must run imports too."""
    from config.celery import app

    assert set(app.amqp.queues) == set(QUEUES)
