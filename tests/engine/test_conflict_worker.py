"""The conflict inbox's actions end to end: a `celery worker` process (tests/engine/test_worker)
runs every job, the conflicts met by its syncs against the simulator and the jobs that carry the
answers out, each answer given as the admin gives it (a POST to the inbox page)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.models import Connector
from records.models import Article
from syncjobs import conflicts, services
from syncjobs.models import ConflictResolution, SyncJob
from tests.conftest import make_connector
from tests.dashboard.test_actions import messages_of

from .conftest import SIM_KEY, log_for
from .test_worker import finished, running_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(tmp_path):
    yield from running_worker(tmp_path)


def through_worker(job, worker):
    """The job as the worker left it (it was enqueued when its transaction committed)."""
    job = wait_for(job, finished, worker=worker)
    assert job.status == SyncJob.Status.COMPLETED, job.error
    return job


def conflicts_on(connector, site, worker, n, *, refused=False):
    """`n` articles edited in WordPress, then on the platform (dated an hour ahead, so the
    WordPress versions stay the older ones): the worker's incremental sync logs a CONFLICT
    for each. `refused`: two-way, WordPress refused those platform edits for good."""
    through_worker(services.start_sync(connector, SyncJob.Kind.FULL), worker)
    ids = [i for i in site.ids("article") if i not in site.bad_ids("article")][:n]
    site.edit("article", ids=ids)
    edited = timezone.now() + timedelta(hours=1)
    fields = {"title": "Edited on the platform", "platform_modified_at": edited}
    if refused:
        fields["push_refused_at"] = edited
    Article.objects.filter(external_id__in=[str(i) for i in ids]).update(**fields)
    job = through_worker(services.start_sync(connector, SyncJob.Kind.INCREMENTAL), worker)
    rows = {int(row.external_id): row for row in conflicts.unresolved(connector)}
    assert sorted(rows) == sorted(ids) and all(r.job_id == job.pk for r in rows.values())
    return rows


def answer(client, connector, data):
    url = reverse("connectors:conflicts", args=[connector.organisation.slug, connector.pk])
    # Followed, as the browser does: the inbox page shows (and so uses up) the messages.
    return messages_of(client.post(url, data, follow=True))


def newest_job(connector):
    """The job an answer just queued: the worker may already have finished it, so it is found
    by being the newest, not by being active."""
    return SyncJob.objects.filter(connector=connector).latest("pk")


def title_of(article_id):
    return Article.objects.get(external_id=str(article_id)).title


def test_import_only_answers_through_the_worker(org_a, alice_client, site, server, worker):
    connector = make_connector(
        org_a, name="Inbox site", site_url=server.url, api_key=SIM_KEY, entity_types=["article"]
    )
    rows = conflicts_on(connector, site, worker, 4)
    kept, dismissed, *taken = rows

    assert answer(alice_client, connector, {"single": f"keep:{rows[kept].pk}"}) == [
        "1 conflict resolved: kept the platform version."
    ]
    assert answer(alice_client, connector, {"single": f"dismiss:{rows[dismissed].pk}"}) == [
        "1 conflict resolved: dismissed."
    ]
    assert not SyncJob.objects.filter(status__in=SyncJob.ACTIVE_STATUSES).exists()
    # Bulk: both others taken from WordPress in one job, which the worker runs.
    selection = [rows[i].pk for i in taken]
    (said,) = answer(alice_client, connector, {"action": "take", "conflict": selection})
    job = newest_job(connector)
    assert said == f"2 conflicts resolved: took wordpress's version. Job #{job.pk} carries it out."
    job = through_worker(job, worker)
    for article_id in taken:
        entry = log_for(job, "article", article_id)
        assert (entry.operation, entry.status) == ("UPDATE", "SUCCESS")
        assert "(edited " in title_of(article_id)  # WordPress's edit (site.edit) is stored
    assert title_of(kept) == title_of(dismissed) == "Edited on the platform"
    assert site.writes == []  # import only: nothing was sent to WordPress

    # A second answer to any of them is refused and starts nothing.
    said = answer(alice_client, connector, {"single": f"take:{rows[kept].pk}"})
    assert said == [
        f"The conflict on article {kept} was already resolved by alice (kept the platform version)."
    ]
    assert not SyncJob.objects.filter(status__in=SyncJob.ACTIVE_STATUSES).exists()
    assert title_of(kept) == "Edited on the platform"

    # The worker's next full sync meets the same WordPress versions: the inbox stays empty.
    full = through_worker(services.start_sync(connector, SyncJob.Kind.FULL), worker)
    assert full.stats["article"]["conflicts"] == 0
    for article_id in (kept, dismissed):
        assert log_for(full, "article", article_id).status == "SKIPPED"
    assert list(conflicts.unresolved(connector)) == []
    assert ConflictResolution.objects.filter(connector=connector).count() == 4


def test_two_way_answers_through_the_worker(org_a, alice_client, site, server, worker):
    connector = make_connector(
        org_a,
        name="Two-way inbox site",
        site_url=server.url,
        api_key=SIM_KEY,
        entity_types=["article"],
        sync_direction=Connector.Direction.TWO_WAY,
    )
    rows = conflicts_on(connector, site, worker, 2, refused=True)
    pushed, taken = rows
    assert site.writes == []

    (said,) = answer(alice_client, connector, {"single": f"keep:{rows[pushed].pk}"})
    job = newest_job(connector)
    assert said == f"1 conflict resolved: kept the platform version. Job #{job.pk} carries it out."
    job = through_worker(job, worker)
    entry = log_for(job, "article", pushed)
    assert (entry.operation, entry.status) == ("SYNC", "SUCCESS"), entry.error
    assert [w["fields"].get("title") for w in site.writes] == ["Edited on the platform"]
    assert site.record("article", pushed)["title"] == "Edited on the platform"

    answer(alice_client, connector, {"single": f"take:{rows[taken].pk}"})
    job = through_worker(newest_job(connector), worker)
    assert log_for(job, "article", taken).status == "SUCCESS"
    assert "(edited " in title_of(taken)
    assert len(site.writes) == 1  # taking WordPress's version pushes nothing

    # A second answer (another tab still showing it) is refused, saying who answered.
    said = answer(alice_client, connector, {"single": f"dismiss:{rows[pushed].pk}"})
    assert said == [
        f"The conflict on article {pushed} was already resolved by alice "
        "(kept the platform version)."
    ]
    assert list(conflicts.unresolved(connector)) == []
