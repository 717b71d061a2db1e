-- annotation_judgement_submit as the owner of an API token (see queue_next_by_token.sql).
CREATE OR REPLACE FUNCTION annotation_judgement_submit_by_token(
    p_key text,
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
$function$;
