"""PostgreSQL only: "next" and "submit" as one function call each.

Each request used to send its statements one at a time (BEGIN, lock, live lease, sweep, candidate,
lease, COMMIT, progress: 9 round trips for "next"), and PostgreSQL parsed and planned every one of
them anew. A PL/pgSQL function keeps its statements' plans for the session and runs them in one
round trip, in its own transaction when the caller has none. The statements inside are the ones
``annotation/services/queue.py`` and ``annotation/services/judgements.py`` run step by step on
SQLite; ``tests/annotation/test_queue_postgres.py`` and ``tests/annotation/test_judgement_submit_postgres.py``
check that both paths agree and
that the functions walk the same indexes.

Read committed: each statement inside a VOLATILE function takes a fresh snapshot, so the live-lease
check after the annotator's row lock sees a lease that a second tab committed while this one waited.
"""

from django.conf import settings
from django.db import migrations

# {user_table} and {user_pk} are filled in from AUTH_USER_MODEL when the migration runs.
NEXT_SQL = """
CREATE OR REPLACE FUNCTION annotation_queue_next(
    p_user integer,
    p_project bigint,
    p_now timestamptz,
    p_leased_at timestamptz,
    p_expires_at timestamptz,
    p_queues boolean[],
    p_shuffle integer[],
    p_expire_batch integer,
    p_progress_cap integer,
    p_serve_gold boolean
) RETURNS TABLE (
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
    v_gold boolean;
    v_found boolean := false;
    v_expired_ids bigint[];
    v_stale record;
    v_relet bigint;
BEGIN
    -- One annotator's requests (two tabs, a double click) run one after the other.
    PERFORM 1 FROM {user_table} u WHERE u.{user_pk} = p_user FOR NO KEY UPDATE;

    -- The lease they already hold here, if any (a fresh snapshot: after the lock).
    SELECT /* queue:live-lease */ a.id, a.display_order, a.leased_at, a.expires_at, a.comparison_id
      INTO lease_id, lease_display_order, lease_leased_at, lease_expires_at, item_id
      FROM annotation_assignment a
     WHERE a.annotator_id = p_user AND a.status = 'leased' AND a.expires_at > p_now
       AND a.comparison_id IN (SELECT c.id FROM annotation_comparison c WHERE c.project_id = p_project)
     ORDER BY a.id
     LIMIT 1;
    v_found := FOUND;

    IF NOT v_found THEN
        -- Give back a few stale leases (skipping rows a submit in flight holds), one comparison at
        -- a time in id order so two sweeps never deadlock.
        WITH stale AS (
            SELECT /* queue:stale-leases */ s.id
              FROM annotation_assignment s
             WHERE s.status = 'leased' AND s.expires_at <= p_now
             ORDER BY s.expires_at
             LIMIT p_expire_batch
               FOR NO KEY UPDATE SKIP LOCKED
        ), expired AS (
            UPDATE annotation_assignment a SET status = 'expired', finished_at = p_now
              FROM stale WHERE a.id = stale.id
            RETURNING a.comparison_id
        )
        SELECT array_agg(expired.comparison_id) INTO v_expired_ids FROM expired;
        IF v_expired_ids IS NOT NULL THEN
            FOR v_stale IN
                SELECT e.cid, count(*)::integer AS n FROM unnest(v_expired_ids) AS e(cid)
                 GROUP BY e.cid ORDER BY e.cid
            LOOP
                UPDATE annotation_comparison c SET open_slots = c.open_slots + v_stale.n
                 WHERE c.id = v_stale.cid;
            END LOOP;
        END IF;

        -- The best open item this annotator has not touched and nobody is taking right now:
        -- the partial index comparison_queue from the top, SKIP LOCKED.
        FOREACH v_gold IN ARRAY p_queues LOOP
            SELECT /* queue:candidate */ c.id, c.prompt_id, c.open_slots,
                   (SELECT o.id FROM annotation_assignment o
                     WHERE o.comparison_id = c.id AND o.annotator_id = p_user)
              INTO item_id, item_prompt_id, item_open_slots, v_relet
              FROM annotation_comparison c
             WHERE c.project_id = p_project AND c.is_gold = v_gold AND c.open_slots > 0
               AND NOT EXISTS (SELECT 1 FROM annotation_assignment t
                                WHERE t.comparison_id = c.id AND t.annotator_id = p_user
                                  AND t.status <> 'expired')
             ORDER BY c.priority DESC, c.id
             LIMIT 1
               FOR NO KEY UPDATE OF c SKIP LOCKED;
            IF FOUND THEN
                v_found := true;
                EXIT;
            END IF;
        END LOOP;
        IF NOT v_found THEN
            RETURN;
        END IF;

        IF v_relet IS NOT NULL THEN
            -- Their own lease on this item ran out before: take it up again, sides as they were.
            UPDATE annotation_assignment a
               SET status = 'leased', expires_at = p_expires_at, finished_at = NULL
             WHERE a.id = v_relet
            RETURNING a.id, a.display_order, a.leased_at, a.expires_at
              INTO lease_id, lease_display_order, lease_leased_at, lease_expires_at;
        ELSE
            -- Sides in a random order: the positions sorted by the caller's shuffled ranks.
            INSERT INTO annotation_assignment (comparison_id, annotator_id, status, display_order,
                                               leased_at, expires_at, finished_at)
            SELECT item_id, p_user, 'leased',
                   coalesce((
                       SELECT jsonb_agg(s.position ORDER BY array_position(p_shuffle, s.rank), s.position)
                         FROM (SELECT cr.position,
                                      (row_number() OVER (ORDER BY cr.position) - 1)::integer AS rank
                                 FROM annotation_comparisonresponse cr
                                WHERE cr.comparison_id = item_id) AS s), '[]'::jsonb),
                   p_leased_at, p_expires_at, NULL
            RETURNING id, display_order, leased_at, expires_at
              INTO lease_id, lease_display_order, lease_leased_at, lease_expires_at;
        END IF;
        UPDATE annotation_comparison c SET open_slots = c.open_slots - 1 WHERE c.id = item_id
        RETURNING c.open_slots INTO item_open_slots;
    ELSE
        SELECT c.prompt_id, c.open_slots INTO item_prompt_id, item_open_slots
          FROM annotation_comparison c WHERE c.id = item_id;
    END IF;

    SELECT p.messages INTO item_messages FROM annotation_prompt p WHERE p.id = item_prompt_id;
    SELECT json_agg(json_build_array(cr.position, r.id, r.text))
      INTO item_slots
      FROM annotation_comparisonresponse cr JOIN annotation_response r ON r.id = cr.response_id
     WHERE cr.comparison_id = item_id;

    IF p_progress_cap IS NOT NULL THEN
        -- The same two counts as annotation.selectors.project_progress.
        SELECT /* queue:progress-done */ count(*) INTO progress_done
          FROM annotation_judgement j
         WHERE j.annotator_id = p_user
           AND (SELECT c.project_id FROM annotation_comparison c WHERE c.id = j.comparison_id) = p_project;
        IF p_serve_gold THEN
            SELECT /* queue:progress */ count(*) INTO progress_open FROM (
                SELECT c.id FROM annotation_comparison c
                 WHERE c.project_id = p_project AND c.open_slots > 0
                   AND c.id NOT IN (SELECT t.comparison_id FROM annotation_assignment t
                                     WHERE t.annotator_id = p_user AND t.status <> 'expired')
                 ORDER BY c.is_gold, c.priority DESC, c.id
                 LIMIT p_progress_cap) AS open_to_them;
        ELSE
            SELECT /* queue:progress */ count(*) INTO progress_open FROM (
                SELECT c.id FROM annotation_comparison c
                 WHERE c.project_id = p_project AND c.open_slots > 0 AND c.is_gold = false
                   AND c.id NOT IN (SELECT t.comparison_id FROM annotation_assignment t
                                     WHERE t.annotator_id = p_user AND t.status <> 'expired')
                 ORDER BY c.is_gold, c.priority DESC, c.id
                 LIMIT p_progress_cap) AS open_to_them;
        END IF;
    END IF;
    RETURN NEXT;
END
$fn$;
"""

STORE_SQL = """
CREATE OR REPLACE FUNCTION annotation_judgement_store(
    p_assignment bigint,
    p_user integer,
    p_members_only boolean,
    p_choice text,
    p_strength smallint,
    p_rationale text,
    p_duration_ms integer,
    p_created_at timestamptz,
    p_now timestamptz
) RETURNS TABLE (
    outcome text,
    judgement_id bigint,
    judgement_comparison_id bigint,
    judgement_choice text,
    judgement_strength smallint,
    judgement_rationale text,
    judgement_duration_ms integer,
    judgement_display_order jsonb,
    judgement_left_response_id bigint,
    judgement_created_at timestamptz
)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
    v_status text;
    v_order jsonb;
BEGIN
    -- The caller's own assignment, row-locked: this serialises a double submit, a skip and the
    -- lease sweep. Another annotator's assignment, or one in a project they left, is 'missing'.
    SELECT /* judgement:assignment */ a.status, a.comparison_id, a.display_order
      INTO v_status, judgement_comparison_id, v_order
      FROM annotation_assignment a
     WHERE a.id = p_assignment AND a.annotator_id = p_user
       AND (NOT p_members_only OR EXISTS (
             SELECT 1 FROM annotation_membership m
              WHERE m.user_id = p_user
                AND m.project_id = (SELECT c.project_id FROM annotation_comparison c
                                     WHERE c.id = a.comparison_id)))
       FOR NO KEY UPDATE OF a;
    IF NOT FOUND THEN
        outcome := 'missing';
        RETURN NEXT;
        RETURN;
    END IF;

    IF v_status = 'submitted' THEN
        -- A replay: the judgement already stored, unchanged.
        SELECT 'replay', j.id, j.choice, j.strength, j.rationale, j.duration_ms, j.display_order,
               j.left_response_id, j.created_at
          INTO outcome, judgement_id, judgement_choice, judgement_strength, judgement_rationale,
               judgement_duration_ms, judgement_display_order, judgement_left_response_id,
               judgement_created_at
          FROM annotation_judgement j WHERE j.assignment_id = p_assignment;
        IF NOT FOUND THEN
            outcome := 'removed';
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT cr.response_id INTO judgement_left_response_id
      FROM annotation_comparisonresponse cr
     WHERE cr.comparison_id = judgement_comparison_id AND cr.position = (v_order->>0)::integer;
    IF NOT FOUND THEN
        outcome := 'no-left-response';
        RETURN NEXT;
        RETURN;
    END IF;

    IF v_status = 'leased' THEN
        -- A held lease owns its slot (even past its time, until the sweep comes by).
        UPDATE annotation_comparison c SET judgement_count = c.judgement_count + 1
         WHERE c.id = judgement_comparison_id;
    ELSE
        -- Expired or skipped: the slot went back to the pool; take it again only if still free.
        UPDATE annotation_comparison c
           SET open_slots = c.open_slots - 1, judgement_count = c.judgement_count + 1
         WHERE c.id = judgement_comparison_id AND c.open_slots > 0;
        IF NOT FOUND THEN
            outcome := 'conflict';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    INSERT INTO annotation_judgement (comparison_id, annotator_id, assignment_id, choice, strength,
                                      rationale, duration_ms, display_order, left_response_id,
                                      created_at)
    VALUES (judgement_comparison_id, p_user, p_assignment, p_choice, p_strength, p_rationale,
            p_duration_ms, v_order, judgement_left_response_id, p_created_at)
    RETURNING id, choice, strength, rationale, duration_ms, display_order, created_at
      INTO judgement_id, judgement_choice, judgement_strength, judgement_rationale,
           judgement_duration_ms, judgement_display_order, judgement_created_at;
    UPDATE annotation_assignment a SET status = 'submitted', finished_at = p_now
     WHERE a.id = p_assignment;
    outcome := 'stored';
    RETURN NEXT;
END
$fn$;
"""

DROP_SQL = """
DROP FUNCTION IF EXISTS annotation_queue_next(integer, bigint, timestamptz, timestamptz, timestamptz,
                                              boolean[], integer[], integer, integer, boolean);
DROP FUNCTION IF EXISTS annotation_judgement_store(bigint, integer, boolean, text, smallint, text,
                                                   integer, timestamptz, timestamptz);
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite runs the same steps one statement at a time, from Python
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    user_table = schema_editor.quote_name(user_model._meta.db_table)
    user_pk = schema_editor.quote_name(user_model._meta.pk.column)
    next_sql = NEXT_SQL.replace("{user_table}", user_table).replace("{user_pk}", user_pk)
    schema_editor.execute(next_sql, params=None)
    schema_editor.execute(STORE_SQL, params=None)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0003_response_uniqueness_portable"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create_functions, drop_functions)]
