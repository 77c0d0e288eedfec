"""Engine tests run against the real simulator (wpsim) on loopback, and PostgreSQL."""

import pytest

from connectors.wordpress_client import client_for
from syncjobs.models import SyncJob, SyncLogEntry
from tests.conftest import run_like_the_worker, simulated_connector

SIM_KEY = "engine-test-sync-key-0123456789abcdef0123456789"
# 200 records: 50 articles, 60 members, 24 events, 24 documents, 10 conferences,
# 16 companies, 16 notifications (wpsim.data.type_counts); one bad article, member,
# event and document.
SIM_RECORDS = 200


@pytest.fixture
def site():
    from wpsim import SimulatedSite

    return SimulatedSite(records=SIM_RECORDS, seed=7, key=SIM_KEY)


@pytest.fixture
def connector(org_a, server):
    return simulated_connector(org_a, server, SIM_KEY, name="Simulated site")


class Sync:
    """Runs a job the way the worker does (run_like_the_worker) with a client whose retries
    do not sleep, and keeps the client for its request count."""

    def __init__(self):
        self.client = None

    def __call__(
        self, connector, kind=SyncJob.Kind.FULL, *, source=None, wrap=None, **client_options
    ):
        """`wrap(client)` puts a test's source around the real client (faults, edits made
        while the job runs); the client is closed afterwards either way."""
        client_options.setdefault("sleep", lambda seconds: None)
        client_options.setdefault("max_retries", 1)
        client = source or client_for(connector, **client_options)
        self.client = wrap(client) if wrap else client
        try:
            return run_like_the_worker(connector, kind, source=self.client)
        finally:
            if source is None:
                client.close()


@pytest.fixture
def sync():
    return Sync()


def logs(job, **filters):
    return SyncLogEntry.objects.filter(job=job, **filters)


def log_for(job, entity_type, external_id):
    return SyncLogEntry.objects.get(job=job, entity_type=entity_type, external_id=str(external_id))
