"""Three real syncs against the simulator whose counters fill every Sync History column:
a full import (created, failed), an incremental that meets a conflict and WordPress
deletions (conflicts, archived), and a two-way incremental that pushes one platform edit and
has another refused by WordPress (pushed, push failed). Shared by the history's view test and
its browser test, so both assert figures a real job produced."""

from datetime import timedelta

from django.utils import timezone

from connectors.models import Connector
from connectors.wordpress import contract
from records.models import Article, Event
from syncjobs.models import SyncJob
from tests.conftest import make_connector
from tests.engine.conftest import Sync
from wpsim import SimulatedSite, serve

KEY = "history-test-sync-key-0123456789abcdef0123"


def _platform_edit(model, external_id, **fields):
    # Edited on the platform after the last sync: the engine sees a platform-side change.
    fields["platform_modified_at"] = timezone.now() + timedelta(seconds=5)
    model.objects.filter(external_id=str(external_id)).update(**fields)


def _good(site, entity_type):
    return [i for i in site.ids(entity_type) if i not in site.bad_ids(entity_type)]


def run_history_syncs(organisation):
    """Returns the connector and its three finished jobs (full, conflicts, pushes), synced
    from a simulated site served for the duration (pages render from the database after)."""
    site = SimulatedSite(records=120, seed=5, key=KEY)
    with serve(site, host="127.0.0.1", port=0) as server:
        return _sync_three_times(organisation, site, server)


def _sync_three_times(organisation, site, server):
    connector = make_connector(
        organisation,
        name="History site",
        site_url=server.url,
        api_key=KEY,
        entity_types=list(contract.ENTITY_TYPES),
    )
    sync = Sync()
    full = sync(connector, SyncJob.Kind.FULL)

    conflicted = _good(site, "article")[0]
    site.edit("article", ids=[conflicted])
    _platform_edit(Article, conflicted, title="Edited on the platform")
    site.delete("event", 2)
    conflicts = sync(connector, SyncJob.Kind.INCREMENTAL)

    connector.sync_direction = Connector.Direction.TWO_WAY
    connector.save(update_fields=["sync_direction"])
    pushed, refused = _good(site, "article")[1], _good(site, "event")[0]
    site.edit("article", ids=[pushed])
    _platform_edit(Article, pushed, title="Pushed from the platform")
    site.edit("event", ids=[refused])
    _platform_edit(Event, refused, timezone="Mars/Olympus_Mons")  # WordPress refuses it
    pushes = sync(connector, SyncJob.Kind.INCREMENTAL)

    for job in (full, conflicts, pushes):
        assert job.status == SyncJob.Status.COMPLETED, job.error
    return connector, full, conflicts, pushes
