"""Against a real WordPress: a sync with a key the plugin refuses fails as "wrong key", and
the organisation's admin gets exactly one mail for two failed runs (the operators' check)."""

import pytest
from django.core.management import CommandError, call_command

from connectors.wordpress import contract
from notifications.models import ConnectorHealth
from syncjobs.models import SyncJob
from tests.conftest import make_connector
from tests.notifications.conftest import smtp  # noqa: F401  (the loopback SMTP server fixture)

pytestmark = pytest.mark.wordpress


@pytest.mark.django_db(transaction=True)
def test_a_wrong_key_fails_the_sync_command_and_mails_the_admin_once(alice, real_wp, smtp):  # noqa: F811
    connector = make_connector(
        alice.memberships.get().organisation,
        name="Real WordPress, wrong key",
        site_url=real_wp.url,
        api_key="not-the-key-" + "q" * 30,
        entity_types=list(contract.ENTITY_TYPES),
    )
    for _ in range(2):
        with pytest.raises(CommandError, match="failed"):
            call_command("sync", str(connector.pk), "--kind", "full", "--wait", "--in-process")
    jobs = SyncJob.objects.filter(connector=connector)
    assert [job.status for job in jobs] == [SyncJob.Status.FAILED] * 2
    assert ConnectorHealth.objects.get(connector=connector).failure_cause == "wrong_key"
    mails = smtp.to("alice@acme.example")
    assert len(mails) == 1
    assert mails[0]["subject"] == "[Association App] Real WordPress, wrong key: sync failed"
    assert jobs.last().error in mails[0]["body"]
