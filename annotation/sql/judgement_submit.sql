-- A judgement in one call, as the session's user or an API token's (annotation_principal; a
-- refused token is the outcome and nothing else happens): the caller's assignment row-locked
-- (this serialises a double submit, a skip and the lease sweep), a replay answered with the
-- judgement already stored, the label scheme checked, the slot settled, the judgement stored and
-- the assignment closed. outcome is 'stored', 'replay', or why nothing was stored: 'missing' (not
-- theirs, or a project they left; superusers need no membership), 'removed' (judged, then the
-- judgement deleted), 'conflict' (the slot went to others), 'no-left-response', or one of the
-- label scheme's codes below. The scheme_* columns describe the project so that the caller can
-- word a refusal.
CREATE OR REPLACE FUNCTION annotation_judgement_submit(
    p_key text,
    p_user integer,
    p_superuser boolean,
    p_assignment bigint,
    p_choice_shown text,
    p_strength integer,
    p_rationale text,
    p_duration_ms integer,
    p_created_at timestamp with time zone,
    p_now timestamp with time zone
)
RETURNS TABLE (
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
    judgement_created_at timestamp with time zone,
    scheme_status text,
    scheme_project_id bigint,
    scheme_slug text,
    scheme_allow_tie boolean,
    scheme_allow_both_bad boolean,
    scheme_strength_scale jsonb,
    scheme_rationale text,
    scheme_overlap integer
)
LANGUAGE plpgsql
AS $function$
DECLARE
    v_order jsonb;
    v_choice text;
    v_scale integer;
    v_pair boolean;
    v_rated boolean;
BEGIN
    SELECT w.principal_id, w.principal_is_superuser, w.refusal
      INTO principal_id, principal_is_superuser, outcome
      FROM annotation_principal(p_key, p_user, p_superuser) AS w;

    -- The caller's own assignment, row-locked: this serialises a double submit, a skip and the
    -- lease sweep. Another annotator's assignment, or one in a project they left, is 'missing';
    -- a refused token reads none (outcome IS NULL is false) and its refusal is the outcome.
    SELECT /* judgement:assignment */ a.status, a.comparison_id, a.display_order,
           p.id, p.slug, p.allow_tie, p.allow_both_bad, p.strength_scale, p.rationale, p.overlap
      INTO scheme_status, judgement_comparison_id, v_order,
           scheme_project_id, scheme_slug, scheme_allow_tie, scheme_allow_both_bad,
           scheme_strength_scale, scheme_rationale, scheme_overlap
      FROM annotation_assignment a
      JOIN annotation_comparison c ON c.id = a.comparison_id
      JOIN annotation_project p ON p.id = c.project_id
     WHERE outcome IS NULL AND a.id = p_assignment AND a.annotator_id = principal_id
       AND (principal_is_superuser OR EXISTS (
             SELECT 1 FROM annotation_membership m WHERE m.project_id = p.id AND m.user_id = principal_id))
       FOR NO KEY UPDATE OF a;
    IF NOT FOUND THEN
        outcome := coalesce(outcome, 'missing');
        RETURN NEXT;
        RETURN;
    END IF;
    judgement_display_order := v_order;

    IF scheme_status = 'submitted' THEN
        -- A replay: the judgement already stored, unchanged (whatever this request says).
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

    -- The label scheme. A refusal stores nothing and answers with its code in outcome, which
    -- annotation.services.judgements turns into a message; the first rule broken is the one named.
    -- A strength scale that is not a JSON list counts as no scale.
    v_scale := CASE WHEN jsonb_typeof(scheme_strength_scale) = 'array'
                    THEN jsonb_array_length(scheme_strength_scale) ELSE 0 END;
    v_pair := jsonb_typeof(v_order) = 'array' AND jsonb_array_length(v_order) = 2;
    v_choice := CASE
        WHEN p_choice_shown IN ('tie', 'both_bad') THEN p_choice_shown
        WHEN p_choice_shown IN ('left', 'right') AND v_pair THEN
            CASE WHEN (v_order->>(CASE WHEN p_choice_shown = 'left' THEN 0 ELSE 1 END))::integer = 0
                 THEN 'a' ELSE 'b' END
    END;
    v_rated := v_choice IN ('a', 'b') AND v_scale > 0;
    outcome := CASE
        WHEN p_choice_shown IS NULL OR p_choice_shown NOT IN ('left', 'right', 'tie', 'both_bad')
            THEN 'choice-unknown'
        WHEN p_choice_shown = 'tie' AND NOT scheme_allow_tie THEN 'tie-not-allowed'
        WHEN p_choice_shown = 'both_bad' AND NOT scheme_allow_both_bad THEN 'both-bad-not-allowed'
        WHEN v_choice IS NULL THEN 'not-a-pair'
        WHEN v_rated AND p_strength IS NULL THEN 'strength-missing'
        WHEN v_rated AND NOT (p_strength >= 0 AND p_strength < v_scale) THEN 'strength-out-of-scale'
        WHEN NOT v_rated AND p_strength IS NOT NULL AND v_scale > 0 THEN 'strength-on-tie'
        WHEN NOT v_rated AND p_strength IS NOT NULL THEN 'strength-not-rated'
        WHEN char_length(p_rationale) > 10000 THEN 'rationale-too-long'
        WHEN scheme_rationale = 'required' AND coalesce(p_rationale, '') = '' THEN 'rationale-required'
        WHEN scheme_rationale = 'off' AND coalesce(p_rationale, '') <> '' THEN 'rationale-off'
        WHEN p_duration_ms < 0 THEN 'duration-negative'
    END;
    IF outcome IS NOT NULL THEN
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

    IF scheme_status = 'leased' THEN
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
    VALUES (judgement_comparison_id, principal_id, p_assignment, v_choice, p_strength, coalesce(p_rationale, ''),
            p_duration_ms, v_order, judgement_left_response_id, p_created_at)
    RETURNING id, choice, strength, rationale, duration_ms, created_at
      INTO judgement_id, judgement_choice, judgement_strength, judgement_rationale,
           judgement_duration_ms, judgement_created_at;
    UPDATE annotation_assignment a SET status = 'submitted', finished_at = p_now
     WHERE a.id = p_assignment;
    outcome := 'stored';
    RETURN NEXT;
END
$function$;
