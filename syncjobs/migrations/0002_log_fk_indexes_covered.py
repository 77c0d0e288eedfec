import django.db.models.deletion
from django.db import migrations, models

# The two single-column indexes Django made for the log's foreign keys duplicate the leading
# column of log_job_idx and log_connector_idx. Dropped by name rather than by AlterField,
# which would drop and re-create both foreign keys and so re-check every row of the log.
INDEXES = {
    "syncjobs_synclogentry_job_id_da9f4d0f": "job_id",
    "syncjobs_synclogentry_connector_id_04c55695": "connector_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_initial"),
        ("syncjobs", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="synclogentry",
                    name="connector",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="connectors.connector",
                    ),
                ),
                migrations.AlterField(
                    model_name="synclogentry",
                    name="job",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="log_entries",
                        to="syncjobs.syncjob",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    reverse_sql=f'CREATE INDEX "{name}" ON "syncjobs_synclogentry" ("{column}")',
                )
                for name, column in INDEXES.items()
            ],
        ),
    ]
