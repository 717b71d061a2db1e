"""API tokens stored as digests, with an expiry (annotation.ApiToken), in place of DRF's authtoken.

Existing DRF tokens become ApiTokens under the same key, so their holders keep working; they
expire ALIGNWEB_TOKEN_TTL_DAYS from now. The authtoken table, which held the keys themselves, is
dropped. Then the token files of annotation/sql/ are loaded: the digest, the vote path's new
principal check and the trigger that revokes a user's tokens. Irreversible: the keys are gone.
"""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

from annotation import sql
from annotation.token_keys import key_digest, key_prefix


def convert_tokens(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('authtoken_token') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
    ApiToken = apps.get_model("annotation", "ApiToken")
    expires_at = timezone.now() + timedelta(days=settings.ALIGNWEB_TOKEN_TTL_DAYS)
    ApiToken.objects.bulk_create(
        ApiToken(
            digest=key_digest(key),
            prefix=key_prefix(key),
            user_id=user_id,
            created_at=created,
            expires_at=expires_at,
        )
        for key, user_id, created in rows
    )
    schema_editor.execute("DROP TABLE authtoken_token", params=None)


def load_sql(apps, schema_editor):
    sql.load(schema_editor, ["token_digest", "principal", "token_revoke", sql.TOKEN_TRIGGERS])


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0003_vote_path_sql"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.CharField(editable=False, max_length=64, unique=True)),
                (
                    "prefix",
                    models.CharField(editable=False, help_text="The key's first characters.", max_length=8),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField()),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.RunPython(convert_tokens),
        migrations.RunPython(load_sql),
    ]
