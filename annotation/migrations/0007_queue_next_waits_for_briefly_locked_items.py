"""PostgreSQL only: "next" waits a moment for open items that are locked, instead of answering "empty".

``annotation_queue_next`` (0004) takes its candidate with ``FOR NO KEY UPDATE SKIP LOCKED``. When
every open item is locked at that instant (the active scorer's bulk priority update holds all the
rows it rewrites, or other annotators are taking the last items), it found nothing and the
annotator was told the queue was empty although it was not (the end-to-end loop test failed on
this now and then). Now, when the pick finds nothing but an open item they have not touched still
exists (a plain read: it waits for no lock), it sleeps 10 ms and tries again, up to 20 times. A
queue that is really empty costs one extra index probe; a busy one never reaches this branch.
"""

import importlib

from django.conf import settings
from django.db import migrations

_v1 = importlib.import_module("annotation.migrations.0004_queue_functions_postgres")

# The candidate pick of 0004 (a FOREACH over the queues) goes inside a loop that retries it.
LOOP_START = (
    "        FOREACH v_gold IN ARRAY p_queues LOOP\n",
    "        LOOP\n        FOREACH v_gold IN ARRAY p_queues LOOP\n",
)
LOOP_END = (
    """        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
""",
    """        END LOOP;
            -- Nothing free: is anything open to them merely locked right now? (No lock taken here.)
            EXIT WHEN v_found OR v_waits >= 20 OR NOT EXISTS (
                SELECT /* queue:locked-open */ 1
                  FROM annotation_comparison c
                 WHERE c.project_id = p_project AND c.is_gold = ANY (p_queues) AND c.open_slots > 0
                   AND NOT EXISTS (SELECT 1 FROM annotation_assignment t
                                    WHERE t.comparison_id = c.id AND t.annotator_id = p_user
                                      AND t.status <> 'expired'));
            PERFORM pg_sleep(0.01);
            v_waits := v_waits + 1;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;
""",
)
DECLARE_WAITS = ("    v_relet bigint;\n", "    v_relet bigint;\n    v_waits integer := 0;\n")


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError("annotation_queue_next (0004) is not the text this migration rewrites.")
    return text.replace(old, new)


NEXT_SQL = _v1.NEXT_SQL
for _old, _new in (LOOP_START, LOOP_END, DECLARE_WAITS):
    NEXT_SQL = _replace_once(NEXT_SQL, _old, _new)


def _create(next_sql: str):
    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        user_model = apps.get_model(settings.AUTH_USER_MODEL)
        user_table = schema_editor.quote_name(user_model._meta.db_table)
        user_pk = schema_editor.quote_name(user_model._meta.pk.column)
        sql = next_sql.replace("{user_table}", user_table).replace("{user_pk}", user_pk)
        schema_editor.execute(sql, params=None)

    return create


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0006_queue_next_by_slug_postgres"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(_create(NEXT_SQL), _create(_v1.NEXT_SQL))]
