"""PostgreSQL only: the two calls of a vote check the caller's API token themselves.

Each API request looked the token up (one round trip, ~14% of the web process's CPU under the load
bench) before "next" or the judgement made its own. ``annotation_queue_next_by_token`` and
``annotation_judgement_submit_by_token`` take the token's key, find its user as DRF's
``TokenAuthentication`` does (an unknown key is 'bad-token', an inactive user 'inactive', and
nothing else happens), then call ``annotation_queue_next_in`` (0006) /
``annotation_judgement_submit`` (0005) as that user. Each answer starts with the user's id and
superuser flag. A vote is then two round trips, not four. See
``annotation.api.authentication.VoteLoopTokenAuthentication``.
"""

from django.db import migrations

NEXT_BY_TOKEN_SQL = """
CREATE OR REPLACE FUNCTION annotation_queue_next_by_token(
    p_key text,
    p_slug text,
    p_roles text[],
    p_now timestamptz,
    p_leased_at timestamptz,
    p_gold_draw double precision,
    p_shuffle integer[],
    p_expire_batch integer,
    p_progress_cap integer
) RETURNS TABLE (
    principal_id integer,
    principal_is_superuser boolean,
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
    v_active boolean;
BEGIN
    SELECT /* auth:token */ u.id, u.is_superuser, u.is_active
      INTO principal_id, principal_is_superuser, v_active
      FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id
     WHERE t.key = p_key;
    IF NOT FOUND THEN
        outcome := 'bad-token';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_active IS NOT TRUE THEN
        outcome := 'inactive';
        RETURN NEXT;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT principal_id, principal_is_superuser, n.*
          FROM annotation_queue_next_in(principal_id, principal_is_superuser, p_slug, p_roles, p_now,
                                        p_leased_at, p_gold_draw, p_shuffle, p_expire_batch,
                                        p_progress_cap) AS n;
END
$fn$;
"""

SUBMIT_BY_TOKEN_SQL = """
CREATE OR REPLACE FUNCTION annotation_judgement_submit_by_token(
    p_key text,
    p_assignment bigint,
    p_choice_shown text,
    p_strength smallint,
    p_rationale text,
    p_duration_ms integer,
    p_created_at timestamptz,
    p_now timestamptz
) RETURNS TABLE (
    principal_id integer,
    principal_is_superuser boolean,
    outcome text,
    judgement_id bigint,
    judgement_comparison_id bigint,
    judgement_choice text,
    judgement_strength smallint,
    judgement_rationale text,
    judgement_duration_ms integer,
    judgement_display_order jsonb,
    judgement_left_response_id bigint,
    judgement_created_at timestamptz,
    scheme_status text,
    scheme_project_id bigint,
    scheme_slug text,
    scheme_allow_tie boolean,
    scheme_allow_both_bad boolean,
    scheme_strength_scale jsonb,
    scheme_rationale text,
    scheme_overlap integer
)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_active boolean;
BEGIN
    SELECT /* auth:token */ u.id, u.is_superuser, u.is_active
      INTO principal_id, principal_is_superuser, v_active
      FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id
     WHERE t.key = p_key;
    IF NOT FOUND THEN
        outcome := 'bad-token';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_active IS NOT TRUE THEN
        outcome := 'inactive';
        RETURN NEXT;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT principal_id, principal_is_superuser, s.*
          FROM annotation_judgement_submit(p_assignment, principal_id, NOT principal_is_superuser,
                                           p_choice_shown, p_strength, p_rationale, p_duration_ms,
                                           p_created_at, p_now) AS s;
END
$fn$;
"""

DROP_SQL = """
DROP FUNCTION IF EXISTS annotation_queue_next_by_token(text, text, text[], timestamptz, timestamptz,
                                                       double precision, integer[], integer, integer);
DROP FUNCTION IF EXISTS annotation_judgement_submit_by_token(text, bigint, text, smallint, text, integer,
                                                             timestamptz, timestamptz);
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NEXT_BY_TOKEN_SQL, params=None)
        schema_editor.execute(SUBMIT_BY_TOKEN_SQL, params=None)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_judgement_tally"), ("authtoken", "0004_alter_tokenproxy_options")]

    operations = [migrations.RunPython(create_functions, drop_functions)]
