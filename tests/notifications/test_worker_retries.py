"""Delivery retries through a real Celery worker and Redis: the retry is a new task message
with a countdown that doubles, and the sync never waits for any of it."""

import pytest
from django.db import connections

from notifications.models import Channel, Delivery
from syncjobs import services
from syncjobs.models import SyncJob
from tests.waiting import wait_until

from .conftest import set_key
from .test_delivery import add_webhook


@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_a_failing_webhook_with_backoff_until_it_answers(
    alice, connector, smtp, receiver, settings
):
    from celery.contrib.testing.worker import start_worker

    import notifications.tasks  # noqa: F401  (registers the tasks with the app)
    import syncjobs.tasks  # noqa: F401
    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "set REDIS_URL for this test"
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 1
    settings.NOTIFICATIONS_MAX_RETRIES = 3
    receiver.statuses = [503, 503]  # down twice, then up
    add_webhook(connector.organisation, receiver.url)
    set_key(connector, "wrong-key-" + "w" * 30)
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        job = services.start_sync(connector, SyncJob.Kind.FULL)
        wait_until(
            lambda: SyncJob.objects.get(pk=job.pk).is_terminal,
            timeout=60,
            what="the sync job to end",
        )
        wait_until(
            lambda: Delivery.objects.filter(
                channel=Channel.WEBHOOK, status=Delivery.Status.SENT
            ).exists(),
            timeout=60,
            what="the webhook's third attempt to be delivered",
        )
    connections.close_all()

    job.refresh_from_db()
    assert job.status == SyncJob.Status.FAILED
    webhook = Delivery.objects.get(channel=Channel.WEBHOOK)
    assert (webhook.attempts, webhook.result) == (3, "HTTP 200")
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests, receiver.requests[1:])]
    # 1 s, then 2 s (the worker's clock and scheduling add a little, never remove).
    assert len(gaps) == 2
    assert 0.9 <= gaps[0] < gaps[1]
    assert gaps[1] >= 1.9
    assert len(smtp.to("alice@acme.example")) == 1
