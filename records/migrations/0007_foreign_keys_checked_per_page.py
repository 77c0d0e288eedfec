# The records' organisation and connector foreign keys without database constraints: the
# sync's page statement checks the connector once per page (records/models.py, PlatformRecord).

import django.db.models.deletion
from django.db import migrations, models

RECORD_MODELS = ("article", "company", "conference", "document", "event", "member", "notification")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("connectors", "0003_connector_deletion_guard_minimum_and_more"),
        ("records", "0006_post_status_and_protection"),
    ]

    operations = [
        operation
        for model_name in RECORD_MODELS
        for operation in (
            migrations.AlterField(
                model_name=model_name,
                name="connector",
                field=models.ForeignKey(
                    blank=True,
                    db_constraint=False,
                    db_index=False,
                    null=True,
                    on_delete=django.db.models.deletion.SET_NULL,
                    to="connectors.connector",
                ),
            ),
            migrations.AlterField(
                model_name=model_name,
                name="organisation",
                field=models.ForeignKey(
                    db_constraint=False,
                    on_delete=django.db.models.deletion.CASCADE,
                    to="accounts.organisation",
                ),
            ),
        )
    ]
