"""The campaign-to-source-video link moves from clips.SourceVideo.campaign into annotations.

clips/0003 added ``SourceVideo.campaign`` before media was kept free of campaigns; it no longer
does. On a database where it did, the column is still there: its links are copied into
``CampaignSourceVideo`` and the column is dropped. A fresh database has no such column.
"""

import django.db.models.deletion
from django.db import migrations, models

COLUMN = "campaign_id"
TABLE = "clips_sourcevideo"


def _has_column(schema_editor) -> bool:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if TABLE not in connection.introspection.table_names(cursor):
            return False
        columns = connection.introspection.get_table_description(cursor, TABLE)
    return any(column.name == COLUMN for column in columns)


def move_links(apps, schema_editor):
    if not _has_column(schema_editor):
        return
    quote = schema_editor.quote_name
    link = apps.get_model("annotations", "CampaignSourceVideo")._meta.db_table
    schema_editor.execute(
        f"INSERT INTO {quote(link)} (source_video_id, campaign_id, created_at) "
        f"SELECT id, {quote(COLUMN)}, created_at FROM {quote(TABLE)} "
        f"WHERE {quote(COLUMN)} IS NOT NULL"
    )
    if schema_editor.connection.vendor == "sqlite":
        # SQLite cannot drop a column that a foreign key and an index use: rebuild the table
        # from the model as the migration state knows it (without the column).
        schema_editor._remake_table(apps.get_model("clips", "SourceVideo"))
    else:
        schema_editor.execute(f"ALTER TABLE {quote(TABLE)} DROP COLUMN {quote(COLUMN)}")


def move_links_back(apps, schema_editor):
    """Going back keeps the links in annotations only (clips/0003 no longer adds the column)."""


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0007_assignment_ahead"),
        ("clips", "0003_candidates"),
    ]

    operations = [
        migrations.CreateModel(
            name="CampaignSourceVideo",
            fields=[
                (
                    "source_video",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="campaign_link",
                        serialize=False,
                        to="clips.sourcevideo",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="source_video_links",
                        to="annotations.campaign",
                    ),
                ),
            ],
        ),
        migrations.RunPython(move_links, move_links_back),
    ]
