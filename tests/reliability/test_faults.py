"""The site misbehaves mid-sync (against the simulator on loopback, real runner, real
PostgreSQL): each job ends in a terminal state with the right status and a precise error,
what was committed before the fault is kept, and a re-run completes with no duplicates and
the platform's counts equal to the site's (minus its deliberately bad records)."""

import logging

import pytest
from django.db.models import Count

from connectors.models import Connector
from records.models import RECORD_MODELS
from syncjobs.models import SyncJob, SyncLogEntry
from syncjobs.runner import run_job
from syncjobs.services import start_sync
from tests.conftest import make_connector
from wpsim import SimulatedSite, serve

from .helpers import good_ids, purge_broker, site_order

KEY = "fault-test-sync-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
PAGE = 5  # small pages, so a fault can strike between two committed pages
ALL_TYPES = ["article", "member", "event", "document", "conference", "company", "notification"]


class FastClients:
    """Clients as the runner builds them, with tiny timeouts and a sleep that records."""

    def __init__(self, factory):
        self.factory = factory  # the real connectors.wordpress_client.client_for
        self.sleeps: list[float] = []
        self.clients = []
        self.before_phase = {}  # entity_type -> callable run before its first page

    def __call__(self, connector, **kwargs):
        from connectors.wordpress.client import WordPressClient

        kwargs.setdefault("timeout", 0.6)
        kwargs.setdefault("connect_timeout", 0.6)
        kwargs.setdefault("max_retries", 2)
        kwargs.setdefault("sleep", self.sleeps.append)
        client = self.factory(connector, **kwargs)
        assert isinstance(client, WordPressClient)
        hooks = self.before_phase
        real_iter_pages = client.iter_pages

        def iter_pages(entity_type, **options):
            if entity_type in hooks:
                hooks.pop(entity_type)()
            return real_iter_pages(entity_type, **options)

        client.iter_pages = iter_pages
        self.clients.append(client)
        return client


@pytest.fixture
def fast_clients(monkeypatch):
    import connectors.wordpress_client
    import syncjobs.runner

    clients = FastClients(connectors.wordpress_client.client_for)
    monkeypatch.setattr(connectors.wordpress_client, "client_for", clients)
    monkeypatch.setattr(syncjobs.runner, "client_for", clients)  # imported by name there

    real_build_plan = syncjobs.runner.build_plan

    def small_pages(job, connector):
        plan = real_build_plan(job, connector)
        plan.per_page = PAGE
        return plan

    monkeypatch.setattr(syncjobs.runner, "build_plan", small_pages)
    return clients


@pytest.fixture
def site():
    site = SimulatedSite(records=70, seed=11, key=KEY)
    with serve(site) as server:
        site.url = server.url
        yield site


@pytest.fixture
def connector(org_a, site):
    purge_broker()
    yield make_connector(org_a, site_url=site.url, api_key=KEY, entity_types=ALL_TYPES)
    purge_broker()


def run(connector, kind=SyncJob.Kind.FULL) -> SyncJob:
    job = start_sync(connector, kind)
    return run_job(job.pk)


def platform_counts(connector) -> dict:
    return {
        t: model.objects.filter(connector=connector, archived_at__isnull=True).count()
        for t, model in RECORD_MODELS.items()
    }


def expected_counts(site) -> dict:
    return {t: len(good_ids(site, t)) for t in ALL_TYPES}


def deliberately_bad(site) -> int:
    return sum(site.count(t) for t in ALL_TYPES) - sum(expected_counts(site).values())


def assert_complete_and_unique(connector, site):
    assert platform_counts(connector) == expected_counts(site)
    for model in RECORD_MODELS.values():
        dupes = (
            model.objects.filter(connector=connector)
            .values("external_id")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        assert not dupes.exists(), list(dupes)


def first_ids(site, entity_type, n) -> set[str]:
    return {str(record["id"]) for record in site_order(site, entity_type)[:n]}


# (fault kind, options, words the job's error must contain)
FATAL_FAULTS = [
    ("status", {"status": 503, "retry_after": None}, ["HTTP 503", "after 3 attempts"]),
    ("status", {"status": 500}, ["HTTP 500", "server error"]),
    ("status", {"status": 502}, ["HTTP 502"]),
    (
        "status",
        {"status": 429, "retry_after": 1},
        ["429", "rate-limit", "WP Admin → Settings → Association App → Sync"],
    ),
    ("reset", {}, ["closed or reset"]),
    ("hang", {"seconds": 1.5}, ["did not answer within 0.6 s"]),
    ("truncate", {}, ["not valid JSON", "truncated"]),
    ("html", {}, ["not valid JSON", "HTML page"]),
    ("wrong_total", {}, ["wrong shape"]),
    ("oversize", {}, ["byte limit"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind,options,words",
    FATAL_FAULTS,
    ids=[f"{f[0]}-{f[1].get('status', '')}" for f in FATAL_FAULTS],
)
def test_fault_mid_sync_fails_precisely_keeps_work_and_rerun_completes(
    site, connector, fast_clients, kind, options, words
):
    # Pages 1-2 of articles succeed, every request from the third on misbehaves.
    site.inject(kind, endpoint="articles", nth=3, every=True, **options)
    job = run(connector)

    assert job.status == SyncJob.Status.FAILED
    for word in words:
        assert word in job.error, f"{word!r} not in job error {job.error!r}"
    assert KEY not in job.error
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR
    assert job.error in connector.status_message
    # The two pages committed before the fault are kept, and only they.
    kept = set(
        RECORD_MODELS["article"]
        .objects.filter(connector=connector)
        .values_list("external_id", flat=True)
    )
    committed = first_ids(site, "article", 2 * PAGE)
    assert kept and kept == committed & set(good_ids(site, "article"))
    if kind == "status" and options["status"] == 429:
        assert 1.0 in fast_clients.sleeps  # Retry-After honoured, not a guessed backoff

    site.clear_faults()
    again = run(connector)
    assert again.status == SyncJob.Status.COMPLETED, again.error
    assert_complete_and_unique(connector, site)
    failed = SyncLogEntry.objects.filter(job=again, status="FAILED")
    assert failed.count() == deliberately_bad(site)
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_faults_are_retried_and_the_job_completes(site, connector, fast_clients, status):
    site.inject("status", endpoint="members", nth=2, count=2, status=status, retry_after=1)
    job = run(connector)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    assert len(fast_clients.sleeps) == 2
    assert_complete_and_unique(connector, site)


@pytest.mark.django_db
def test_key_rotated_mid_job(site, connector, fast_clients):
    # Articles and members sync, then the association regenerates the key in WordPress.
    new_key = "rotated-sync-key-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    fast_clients.before_phase["event"] = lambda: site.rotate_key(new_key)
    job = run(connector)

    assert job.status == SyncJob.Status.FAILED
    assert "rejected the sync API key" in job.error
    # The error names the page where the admin generates a new key, as the plugin spells it.
    assert "WP Admin → Settings → Association App → Sync" in job.error
    assert KEY not in job.error and new_key not in job.error
    counts = platform_counts(connector)
    expected = expected_counts(site)
    assert counts["article"] == expected["article"] and counts["member"] == expected["member"]
    assert counts["event"] == 0

    connector.api_key = new_key
    connector.save()
    again = run(connector)
    assert again.status == SyncJob.Status.COMPLETED, again.error
    assert_complete_and_unique(connector, site)


@pytest.mark.django_db
def test_lying_total_on_a_later_page(site, connector, fast_clients):
    """A site whose total changes between pages (records added mid-run) is not an error;
    one whose totals contradict themselves is reported, never half-trusted."""
    site.inject("wrong_total", endpoint="events", nth=1, count=1)
    job = run(connector)
    assert job.status == SyncJob.Status.FAILED
    assert "wrong shape" in job.error and "events" in job.error
    again = run(connector)
    assert again.status == SyncJob.Status.COMPLETED, again.error
    assert_complete_and_unique(connector, site)


@pytest.mark.django_db
def test_incremental_rerun_after_a_fault_adds_changes_without_duplicates(
    site, connector, fast_clients
):
    assert run(connector).status == SyncJob.Status.COMPLETED
    site.edit("article", 3)
    site.add("event", 2)
    site.delete("member", 1)
    site.inject("status", endpoint="events", nth=1, every=True, status=503)
    failed = run(connector, SyncJob.Kind.INCREMENTAL)
    assert failed.status == SyncJob.Status.FAILED and "HTTP 503" in failed.error
    site.clear_faults()
    again = run(connector, SyncJob.Kind.INCREMENTAL)
    assert again.status == SyncJob.Status.COMPLETED, again.error
    assert_complete_and_unique(connector, site)


@pytest.mark.django_db
def test_key_is_nowhere_after_a_sync_with_failures(site, connector, fast_clients, caplog):
    """caplog at DEBUG across a sync with faults: no log record, job error, log row or client
    exception carries the key."""
    caplog.set_level(logging.DEBUG)
    site.inject("status", endpoint="members", nth=1, count=1, status=503, retry_after=1)
    site.inject("status", endpoint="events", nth=1, every=True, status=401)
    job = run(connector)
    assert job.status == SyncJob.Status.FAILED
    texts = [job.error, connector.status_message]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info) for r in caplog.records if r.exc_info]
    texts += list(SyncLogEntry.objects.filter(job=job).values_list("error", flat=True))
    connector.refresh_from_db()
    texts.append(connector.status_message)
    assert caplog.records, "expected the sync to log something at DEBUG"
    for text in texts:
        assert KEY not in text, text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "state,words",
    [
        ("disabled", ["switched off", "WP Admin → Settings → Association App → Sync"]),
        ("plugin_missing", ["Association App plugin"]),
    ],
)
def test_plugin_switched_off_or_removed_mid_job(site, connector, fast_clients, state, words):
    """The association switches the sync API off (or deactivates the plugin) while a job
    runs: the job fails saying so, keeps what it committed, and completes once it is back."""
    fast_clients.before_phase["event"] = lambda: site.inject(state)
    job = run(connector)
    assert job.status == SyncJob.Status.FAILED
    for word in words:
        assert word in job.error, job.error
    counts = platform_counts(connector)
    expected = expected_counts(site)
    assert counts["article"] == expected["article"] and counts["member"] == expected["member"]
    assert counts["event"] == 0
    site.clear_faults()
    again = run(connector)
    assert again.status == SyncJob.Status.COMPLETED, again.error
    assert_complete_and_unique(connector, site)
