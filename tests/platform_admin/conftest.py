"""The platform admin's fleet: several organisations, connectors in every status, and jobs
failed inside and outside the last 24 hours."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Organisation
from connectors.models import Connector
from syncjobs.models import SyncJob
from tests.conftest import make_connector


def add_job(connector, status, *, ago, **fields):
    at = timezone.now() - ago
    finished = status in SyncJob.TERMINAL_STATUSES
    return SyncJob.objects.create(
        connector=connector,
        kind=SyncJob.Kind.INCREMENTAL,
        status=status,
        created_at=at - timedelta(minutes=5),
        started_at=at - timedelta(minutes=4) if status != SyncJob.Status.PENDING else None,
        finished_at=at if finished else None,
        **fields,
    )


@pytest.fixture
def platform(org_a, org_b, connector_a, connector_b):
    """A known fleet:

    Acme Association: "Acme Association site" ACTIVE, "Acme archive" ERROR
    Globex Guild:     "Globex Guild site" PAUSED, "Globex news" ACTIVE (manual only)
    Umbrella Union:   "Umbrella blog" ERROR
    Initech:          no connectors (not counted among organisations with connectors)

    Jobs: two FAILED inside the last 24 hours, one FAILED 25 hours ago, one COMPLETED,
    one RUNNING.
    """
    umbrella = Organisation.objects.create(name="Umbrella Union", slug="umbrella")
    Organisation.objects.create(name="Initech", slug="initech")
    now = timezone.now()
    connector_a.next_sync_at = now + timedelta(minutes=30)
    connector_a.save()
    archive = make_connector(
        org_a,
        name="Acme archive",
        status=Connector.Status.ERROR,
        status_message="WordPress answered 401: the API key was rejected.",
        next_sync_at=now + timedelta(hours=5),
    )
    connector_b.status = Connector.Status.PAUSED
    connector_b.save()
    news = make_connector(org_b, name="Globex news", frequency=Connector.Frequency.MANUAL)
    blog = make_connector(
        umbrella,
        name="Umbrella blog",
        status=Connector.Status.ERROR,
        next_sync_at=now + timedelta(hours=2),
    )
    # Acme site: failed 25h ago (outside the window), then completed an hour ago.
    add_job(connector_a, SyncJob.Status.FAILED, ago=timedelta(hours=25), error="timeout")
    add_job(connector_a, SyncJob.Status.COMPLETED, ago=timedelta(hours=1))
    # Acme archive and Umbrella blog failed inside the window.
    add_job(archive, SyncJob.Status.FAILED, ago=timedelta(hours=23), error="401")
    add_job(blog, SyncJob.Status.FAILED, ago=timedelta(minutes=10), error="500")
    # Globex news is syncing right now.
    add_job(news, SyncJob.Status.RUNNING, ago=timedelta(minutes=1))
    return {"archive": archive, "news": news, "blog": blog}
