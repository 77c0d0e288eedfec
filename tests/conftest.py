"""The fixed cast every view test uses (after healthchecks' BaseTestCase):

- alice: organisation admin of Acme (org_a), owner of connector_a
- bob: organisation admin of Globex (org_b), the outsider to everything of Acme
- root: platform admin (super admin), member of nothing, sees everything
"""

import os
import threading
from pathlib import Path

import pytest
from django.db.backends.signals import connection_created
from django.test import Client

from accounts.models import Membership, Organisation, User
from connectors.models import Connector

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (Django's default, per process): a page cached by
    one test (Platform → Connectors' charts) must not show another test's data."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def org_a(db):
    return Organisation.objects.create(name="Acme Association", slug="acme")


@pytest.fixture
def org_b(db):
    return Organisation.objects.create(name="Globex Guild", slug="globex")


@pytest.fixture
def alice(org_a):
    user = User.objects.create_user("alice", "alice@acme.example", PASSWORD, first_name="Alice")
    Membership.objects.create(user=user, organisation=org_a)
    return user


@pytest.fixture
def bob(org_b):
    user = User.objects.create_user("bob", "bob@globex.example", PASSWORD, first_name="Bob")
    Membership.objects.create(user=user, organisation=org_b)
    return user


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", "root@platform.example", PASSWORD)


def make_connector(organisation, **fields):
    defaults = {
        "name": f"{organisation.name} site",
        "site_url": "https://wp.example.org",
        "entity_types": ["article", "member", "event"],
    }
    defaults.update(fields)
    api_key = defaults.pop("api_key", "sync-key-" + organisation.slug + "-0123456789abcdef")
    connector = Connector(organisation=organisation, **defaults)
    connector.api_key = api_key
    connector.save()
    return connector


@pytest.fixture
def connector_a(org_a):
    return make_connector(org_a)


@pytest.fixture
def connector_b(org_b):
    return make_connector(org_b)


def _client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return _client_for(alice)


@pytest.fixture
def bob_client(bob):
    return _client_for(bob)


@pytest.fixture
def root_client(root):
    return _client_for(root)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marker to group the tests
def pytest_collection_modifyitems(config, items):
    """Under `--dist loadgroup` every test on the real WordPress runs on one xdist worker: the
    site is built once per process (half a minute of work), and its tests share its options and
    records in file order."""
    for item in items:
        if "real_wp" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("real_wordpress"))


def _deadlocks_end_the_server_request(sender, connection, **kwargs):
    """A page still polling when a live-server test ends has a request in flight (inside its
    ATOMIC_REQUESTS transaction) while the test's teardown flushes the tables: PostgreSQL then
    sees a deadlock and cancels whichever backend checks first, at deadlock_timeout (1 s).
    Connections outside the live server's request threads check after 10 s, so it is the
    abandoned request that gives way, never the flush (which would fail the next test)."""
    if connection.vendor == "postgresql" and (
        "process_request_thread" not in threading.current_thread().name
    ):
        with connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '10s'")


connection_created.connect(_deadlocks_end_the_server_request)


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: nothing may pass by not running."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) were skipped; failing the run.", red=True)
        session.exitstatus = 1


# Real WordPress 6.1 REST responses, copied from shared/fixtures so the suite is self-contained.
WORDPRESS_FIXTURES = Path(__file__).parent / "fixtures" / "wordpress-6.1"
