"""The vote path's functions and the judgement tally's triggers, from the files in annotation/sql/.

The migrations of annotation and training are one squashed initial set. To regenerate it (after
merging branches that add migrations, while nothing is deployed): delete every numbered file in
annotation/migrations/ and training/migrations/ except this one, run
``python manage.py makemigrations annotation training`` on an empty database, rename this file
after the last generated annotation migration if the numbers moved, and set its dependency on
that migration below.
"""

from django.conf import settings
from django.db import migrations

from annotation import sql


def create(apps, schema_editor):
    sql.check_user_model(apps.get_model(settings.AUTH_USER_MODEL))
    sql.load(schema_editor, [*sql.function_names(), sql.TRIGGERS])


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.oid::regprocedure FROM pg_proc p"
            " WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'annotation\\_%'"
        )
        functions = [row[0] for row in cursor.fetchall()]
    for signature in functions:  # CASCADE takes the triggers along
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create, drop)]
