-- The lease half of "next" (queue_next.sql): lock the annotator, find their live lease in the
-- project if any, else sweep a few stale leases, take the best open item they have not touched
-- (the partial index comparison_queue from the top, SKIP LOCKED) and lease it. Returns the
-- lease's assignment id, or NULL when nothing is open to them.
--
-- Read committed: each statement inside a VOLATILE function takes a fresh snapshot, so the
-- live-lease check after the annotator's row lock sees a lease that a second tab committed
-- while this one waited. When every open item is merely locked at that instant (the active
-- scorer's bulk priority update, other annotators taking the last items), it waits 10 ms and
-- tries again, up to 20 times, instead of answering "empty". Names the user table auth_user:
-- the migration that loads this file refuses a user model with another table.
CREATE OR REPLACE FUNCTION annotation_lease_take(
    p_user integer,
    p_project bigint,
    p_now timestamp with time zone,
    p_leased_at timestamp with time zone,
    p_expires_at timestamp with time zone,
    p_gold_rate double precision,
    p_gold_draw double precision,
    p_shuffle integer[],
    p_expire_batch integer
)
RETURNS bigint
LANGUAGE plpgsql
AS $function$
DECLARE
    v_queues boolean[];
    v_gold boolean;
    v_found boolean := false;
    v_expired_ids bigint[];
    v_stale record;
    v_lease bigint;
    v_item bigint;
    v_relet bigint;
    v_waits integer := 0;
BEGIN
    -- Which queue to try first: gold items at gold_rate (p_gold_draw is the caller's uniform draw),
    -- regular ones otherwise; the other queue is the fallback, so an annotator is never told
    -- "done" while either has work. Projects with gold_rate 0 never serve gold items.
    v_queues := CASE WHEN p_gold_rate <= 0 THEN ARRAY[false]
                     WHEN p_gold_draw < p_gold_rate THEN ARRAY[true, false]
                     ELSE ARRAY[false, true] END;

    -- One annotator's requests (two tabs, a double click) run one after the other.
    PERFORM 1 FROM auth_user u WHERE u.id = p_user FOR NO KEY UPDATE;

    -- The lease they already hold here, if any (a fresh snapshot: after the lock).
    SELECT /* queue:live-lease */ a.id INTO v_lease
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
        LOOP
        FOREACH v_gold IN ARRAY v_queues LOOP
            SELECT /* queue:candidate */ c.id,
                   (SELECT o.id FROM annotation_assignment o
                     WHERE o.comparison_id = c.id AND o.annotator_id = p_user)
              INTO v_item, v_relet
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
            -- Nothing free: is anything open to them merely locked right now? (No lock taken here.)
            EXIT WHEN v_found OR v_waits >= 20 OR NOT EXISTS (
                SELECT /* queue:locked-open */ 1
                  FROM annotation_comparison c
                 WHERE c.project_id = p_project AND c.is_gold = ANY (v_queues) AND c.open_slots > 0
                   AND NOT EXISTS (SELECT 1 FROM annotation_assignment t
                                    WHERE t.comparison_id = c.id AND t.annotator_id = p_user
                                      AND t.status <> 'expired'));
            PERFORM pg_sleep(0.01);
            v_waits := v_waits + 1;
        END LOOP;
        IF NOT v_found THEN
            RETURN NULL;
        END IF;

        IF v_relet IS NOT NULL THEN
            -- Their own lease on this item ran out before: take it up again, sides as they were.
            UPDATE annotation_assignment a
               SET status = 'leased', expires_at = p_expires_at, finished_at = NULL
             WHERE a.id = v_relet
            RETURNING a.id INTO v_lease;
        ELSE
            -- Sides in a random order: the positions sorted by the caller's shuffled ranks.
            INSERT INTO annotation_assignment (comparison_id, annotator_id, status, display_order,
                                               leased_at, expires_at, finished_at)
            SELECT v_item, p_user, 'leased',
                   coalesce((
                       SELECT jsonb_agg(s.position ORDER BY array_position(p_shuffle, s.rank), s.position)
                         FROM (SELECT cr.position,
                                      (row_number() OVER (ORDER BY cr.position) - 1)::integer AS rank
                                 FROM annotation_comparisonresponse cr
                                WHERE cr.comparison_id = v_item) AS s), '[]'::jsonb),
                   p_leased_at, p_expires_at, NULL
            RETURNING id INTO v_lease;
        END IF;
        UPDATE annotation_comparison c SET open_slots = c.open_slots - 1 WHERE c.id = v_item;
    END IF;
    RETURN v_lease;
END
$function$;
