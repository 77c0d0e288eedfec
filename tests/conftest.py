"""The fixed cast every view test uses (after healthchecks' BaseTestCase):

- alice: organisation admin of Acme (org_a), owner of connector_a
- bob: organisation admin of Globex (org_b), the outsider to everything of Acme
- root: platform admin (super admin), member of nothing, sees everything
"""

import os
import threading
from pathlib import Path

import hypothesis
import pytest
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django.db.backends.signals import connection_created
from django.test import Client

from accounts.models import Membership, Organisation, User
from connectors.models import Connector
from records.mapping import MAPPING_REVISION

# Each worker's test database is cloned from one migrated template (tests/template_database.py).
from tests.template_database import django_db_keepdb, django_db_modify_db_settings  # noqa: F401

PASSWORD = "correct horse battery staple"

# CI draws the same examples every run: a property test that finds a new input there would turn
# an unrelated submission red. Local runs keep drawing new ones (the long campaign:
# tests/reliability/test_url_fuzz.py).
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


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
        # As connectors.services creates them: records stored with the current mapping.
        "mapping_revision": MAPPING_REVISION,
    }
    defaults.update(fields)
    api_key = defaults.pop("api_key", "sync-key-" + organisation.slug + "-0123456789abcdef")
    connector = Connector(organisation=organisation, **defaults)
    connector.api_key = api_key
    connector.save()
    return connector


def simulated_connector(organisation, server, key, **fields):
    """A connector to a simulated site (wpsim) served on loopback, every entity type on."""
    from connectors.wordpress import contract

    fields.setdefault("entity_types", list(contract.ENTITY_TYPES))
    return make_connector(organisation, site_url=server.url, api_key=key, **fields)


@pytest.fixture
def server(site):
    """The directory's `site` (a wpsim.SimulatedSite), served on a free loopback port."""
    from wpsim import serve

    with serve(site, host="127.0.0.1", port=0) as running:
        yield running


def run_like_the_worker(connector, kind="FULL", *, source=None, on_commit=None):
    """Runs a sync as the worker does: services.start_sync, then runner.run_job in this
    process (with `source` instead of the connector's client, if given). With `on_commit`
    (pytest-django's django_capture_on_commit_callbacks) the job's own task message is not
    sent and the run's after-commit work (deliveries) is done."""
    from contextlib import nullcontext

    from syncjobs import services
    from syncjobs.runner import run_job

    connector.refresh_from_db()
    with on_commit(execute=False) if on_commit else nullcontext():
        job = services.start_sync(connector, kind)
    with on_commit(execute=True) if on_commit else nullcontext():
        finished = run_job(job.pk, source=source)
    connector.refresh_from_db()
    return finished


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


# The real-WordPress test files that run on the second site (the others run on the first): the
# two groups take about as long as each other, so neither is the floor of the whole run.
REAL_WORDPRESS_SECOND_SITE = {
    "test_change_capture.py",
    "test_product.py",
    "test_push.py",
    "test_visibility_and_reconcile.py",
}


def real_wordpress_group(nodeid: str) -> str | None:
    """The group of a test on the real WordPress (every test of tests/wordpress_real/ uses the
    `real_wp` site through its autouse fixture), None for any other test."""
    path = nodeid.split("::", 1)[0]
    if not path.startswith("tests/wordpress_real/"):
        return None
    return (
        "real_wordpress_2"
        if path.rsplit("/", 1)[-1] in REAL_WORDPRESS_SECOND_SITE
        else ("real_wordpress_1")
    )


def pytest_xdist_make_scheduler(config, log):
    """Under `--dist loadgroup` the tests on the real WordPress run in two groups, each on one
    xdist worker that builds its own site (once per process: the `real_wp` session fixture); a
    site's tests share its options and records in file order, and each file leaves the site as
    it found it, so a file runs on either site. xdist hands out the biggest groups first, so the
    two start at once, on two workers; every other test goes wherever a worker is free.

    The groups are given by path here, not by `xdist_group` marks: xdist 3.8 groups marked
    tests by renaming their node ids, which pytest 9 no longer reads (marked tests were spread
    over every worker, each building a site)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class RealWordPressGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return real_wordpress_group(nodeid) or super()._split_scope(nodeid)

    return RealWordPressGroups(config, log)


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


# Beyond this many rows a table is truncated rather than emptied row by row.
_FLUSH_DELETE_MAX_ROWS = 5000
_truncate_flush = PostgresOperations.sql_flush


def _flush_by_delete(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    """How a transactional test (live server, real Celery worker) empties the tables after it:
    one TRUNCATE of every table took ~1 s (PostgreSQL replaces each table's and index's files),
    DELETE of the few rows a test writes takes milliseconds. Same effect, same locks: every table
    is locked first as TRUNCATE locks it, so a request still in flight finishes (or waits)
    before the rows go, and none of its rows is left for the next test. A table a test filled
    with thousands of rows is truncated all the same. Foreign keys are deferred (Django creates
    them so), so the order does not matter within flush's one transaction."""
    if reset_sequences or not tables:
        return _truncate_flush(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    names = ", ".join(self.quote_name(table) for table in tables)
    each = ", ".join("'" + self.quote_name(table).replace("'", "''") + "'" for table in tables)
    limit = _FLUSH_DELETE_MAX_ROWS
    return [
        f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE;",
        f"""DO $$ DECLARE name text; big boolean; BEGIN
          FOREACH name IN ARRAY ARRAY[{each}] LOOP
            EXECUTE 'SELECT count(*) > {limit} FROM (SELECT 1 FROM ' || name
              || ' LIMIT {limit + 1}) AS sample' INTO big;
            IF big THEN EXECUTE 'TRUNCATE ' || name || ' CASCADE';
            ELSE EXECUTE 'DELETE FROM ' || name; END IF;
          END LOOP; END $$;""",
    ]


PostgresOperations.sql_flush = _flush_by_delete


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
