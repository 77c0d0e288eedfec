"""Shared helpers of the diagnostics tests."""

import json

import pytest

from diagnostics import runner
from diagnostics.models import ConnectionTest
from records.models import RECORD_MODELS
from syncjobs.models import SyncLogEntry

from ..conftest import WORDPRESS_FIXTURES

FIXTURES = WORDPRESS_FIXTURES
KEY = "diag-test-key-0123456789abcdefghijklmnop"


def real_wp_index(*, with_plugin: bool) -> dict:
    """The /wp-json/ index of a real WordPress 6.1 (fixture), with or without our namespace."""
    index = json.loads((FIXTURES / "index.json").read_text())
    if with_plugin:
        index["namespaces"] = [*index["namespaces"], "association-app/v1"]
    return index


def run_test(connector, user=None) -> ConnectionTest:
    """Run a connection test the way the worker does, in-process."""
    test = ConnectionTest.objects.create(connector=connector, requested_by=user)
    runner.run_connection_test(test.pk)
    test.refresh_from_db()
    return test


def steps_by_key(test: ConnectionTest) -> dict:
    return {step["key"]: step for step in test.steps}


def platform_row_counts() -> dict:
    counts = {name: model.objects.count() for name, model in RECORD_MODELS.items()}
    counts["sync_log"] = SyncLogEntry.objects.count()
    return counts


@pytest.fixture
def unchanged_platform_data(db):
    """Asserts the test wrote no platform record and no sync log row."""
    before = platform_row_counts()
    yield
    assert platform_row_counts() == before


@pytest.fixture
def celery_eager():
    """Tasks sent with .delay() run in-process (the real task code, no broker)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
