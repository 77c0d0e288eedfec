"""The demo's data (`make demo` runs seed_demo): what a newcomer sees first must work."""

import pytest
from django.core.management import call_command

from accounts.models import Organisation
from connectors.models import Connector
from syncjobs.models import SyncJob, SyncLogEntry
from tests.engine.conftest import Sync
from wpsim import SimulatedSite, serve

ACME_KEY = "demo-acme-sync-key-7f3a9c2e51"
GLOBEX_KEY = "demo-globex-sync-key-4b8d1e6f07"


@pytest.mark.django_db
def test_each_demo_connector_imports_its_site_with_only_the_sites_bad_records_failing():
    # Acme has two connectors on one site: with the same entity types they would fight over
    # the same slugs and a first click on the second one would fail most of its records.
    acme_site = SimulatedSite(records=300, seed=1, key=ACME_KEY)
    globex_site = SimulatedSite(records=100, seed=2, key=GLOBEX_KEY)
    with (
        serve(acme_site, host="127.0.0.1", port=0) as acme,
        serve(globex_site, host="127.0.0.1", port=0) as globex,
    ):
        sites = f"{acme.url.rsplit(':', 1)[1].rstrip('/')}:{ACME_KEY},"
        sites += f"{globex.url.rsplit(':', 1)[1].rstrip('/')}:{GLOBEX_KEY}"
        call_command("seed_demo", sites=sites)
        call_command("seed_demo", sites=sites)  # idempotent: `make demo` runs it every time
        assert Connector.objects.count() == 3

        sync = Sync()
        for connector in Connector.objects.order_by("pk"):
            site = acme_site if connector.organisation.slug == "acme" else globex_site
            job = sync(connector, SyncJob.Kind.FULL)
            assert job.status == SyncJob.Status.COMPLETED, job.error
            for entity_type in connector.entity_types:
                failed = set(
                    SyncLogEntry.objects.filter(
                        job=job, entity_type=entity_type, status="FAILED"
                    ).values_list("external_id", flat=True)
                )
                # The simulator's deliberately bad records, and its articles that reuse
                # another article's slug on purpose: nothing else may fail.
                expected = {str(i) for i in site.bad_ids(entity_type)}
                if entity_type == "article":
                    expected |= {str(i) for i in site.duplicate_slug_ids()}
                assert failed <= expected, (connector.name, entity_type, failed - expected)
                assert job.stats[entity_type]["created"] > 0, (connector.name, entity_type)
    acme_types = [
        set(c.entity_types)
        for c in Connector.objects.filter(organisation=Organisation.objects.get(slug="acme"))
    ]
    assert acme_types[0].isdisjoint(acme_types[1])
