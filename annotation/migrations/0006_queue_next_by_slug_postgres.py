"""PostgreSQL only: "next" by project slug, the caller's role checked in the same call.

The API's "next" first looked the project and the caller's role up (one round trip), then called
``annotation_queue_next`` (0004). ``annotation_queue_next_in`` does the lookup itself and calls it:
one round trip for the whole request after the token. The rules are those of
``annotation.permissions.project_for_action``: superusers act as admins of every project, anyone
else needs a membership whose role is in the allowed set; an outsider gets 'no-project' (a 404),
a member with another role gets 'forbidden' and their role (a 403 that names it).
"""

from django.db import migrations

NEXT_IN_SQL = """
CREATE OR REPLACE FUNCTION annotation_queue_next_in(
    p_user integer,
    p_superuser boolean,
    p_slug text,
    p_roles text[],
    p_now timestamptz,
    p_leased_at timestamptz,
    p_gold_draw double precision,
    p_shuffle integer[],
    p_expire_batch integer,
    p_progress_cap integer
) RETURNS TABLE (
    outcome text,
    member_role text,
    project_id bigint,
    project_gold_rate double precision,
    project_lease_seconds integer,
    project_overlap integer,
    lease_id bigint,
    lease_display_order jsonb,
    lease_leased_at timestamptz,
    lease_expires_at timestamptz,
    item_id bigint,
    item_prompt_id bigint,
    item_open_slots integer,
    item_messages jsonb,
    item_slots json,
    progress_done bigint,
    progress_open bigint
)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_queues boolean[];
BEGIN
    IF p_superuser THEN
        SELECT /* queue:project */ p.id, p.gold_rate, p.lease_seconds, p.overlap, 'admin'
          INTO project_id, project_gold_rate, project_lease_seconds, project_overlap, member_role
          FROM annotation_project p WHERE p.slug = p_slug;
    ELSE
        SELECT /* queue:project */ p.id, p.gold_rate, p.lease_seconds, p.overlap, m.role
          INTO project_id, project_gold_rate, project_lease_seconds, project_overlap, member_role
          FROM annotation_project p
          JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = p_user
         WHERE p.slug = p_slug;
    END IF;
    IF NOT FOUND THEN
        outcome := 'no-project';
        RETURN NEXT;
        RETURN;
    END IF;
    IF NOT member_role = ANY (p_roles) THEN
        outcome := 'forbidden';
        RETURN NEXT;
        RETURN;
    END IF;

    -- annotation.services.queue._queue_order: gold first at gold_rate, the other queue as fallback.
    v_queues := CASE WHEN project_gold_rate <= 0 THEN ARRAY[false]
                     WHEN p_gold_draw < project_gold_rate THEN ARRAY[true, false]
                     ELSE ARRAY[false, true] END;
    SELECT n.lease_id, n.lease_display_order, n.lease_leased_at, n.lease_expires_at, n.item_id,
           n.item_prompt_id, n.item_open_slots, n.item_messages, n.item_slots, n.progress_done,
           n.progress_open
      INTO lease_id, lease_display_order, lease_leased_at, lease_expires_at, item_id,
           item_prompt_id, item_open_slots, item_messages, item_slots, progress_done,
           progress_open
      FROM annotation_queue_next(p_user, project_id, p_now, p_leased_at,
                                 p_now + make_interval(secs => project_lease_seconds), v_queues,
                                 p_shuffle, p_expire_batch, p_progress_cap,
                                 project_gold_rate > 0) AS n;
    outcome := CASE WHEN FOUND THEN 'leased' ELSE 'empty' END;
    RETURN NEXT;
END
$fn$;
"""

DROP_SQL = """
DROP FUNCTION IF EXISTS annotation_queue_next_in(integer, boolean, text, text[], timestamptz, timestamptz,
                                                 double precision, integer[], integer, integer);
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NEXT_IN_SQL, params=None)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0005_judgement_submit_postgres")]

    operations = [migrations.RunPython(create_function, drop_function)]
