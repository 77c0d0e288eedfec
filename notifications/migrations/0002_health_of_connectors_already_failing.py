"""Connectors already in ERROR when notifications arrive start as failing (since their last
sync), so their next failure is not announced as new and Platform health counts them now."""

from django.db import migrations


def already_failing(apps, schema_editor):
    Connector = apps.get_model("connectors", "Connector")
    ConnectorHealth = apps.get_model("notifications", "ConnectorHealth")
    ConnectorHealth.objects.bulk_create(
        [
            ConnectorHealth(
                connector_id=connector.pk,
                failing_since=connector.last_sync_at or connector.updated_at,
                consecutive_failures=1,
            )
            for connector in Connector.objects.filter(status="ERROR").only(
                "pk", "last_sync_at", "updated_at"
            )
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("connectors", "0001_initial"),
    ]

    operations = [migrations.RunPython(already_failing, migrations.RunPython.noop)]
