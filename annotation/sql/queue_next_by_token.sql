-- annotation_queue_next_in as the owner of an API token: the key is looked up as DRF's
-- TokenAuthentication does ('bad-token' for an unknown key, 'inactive' for an inactive user,
-- and nothing else happens). Each row starts with the user's id and superuser flag.
-- Names the user table auth_user (see queue_next.sql).
CREATE OR REPLACE FUNCTION annotation_queue_next_by_token(
    p_key text,
    p_slug text,
    p_roles text[],
    p_now timestamp with time zone,
    p_leased_at timestamp with time zone,
    p_gold_draw double precision,
    p_shuffle integer[],
    p_expire_batch integer,
    p_progress_cap integer
)
RETURNS TABLE (
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
    lease_leased_at timestamp with time zone,
    lease_expires_at timestamp with time zone,
    item_id bigint,
    item_prompt_id bigint,
    item_open_slots integer,
    item_messages jsonb,
    item_slots json,
    progress_done bigint,
    progress_open bigint
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
        SELECT principal_id, principal_is_superuser, n.*
          FROM annotation_queue_next_in(principal_id, principal_is_superuser, p_slug, p_roles, p_now,
                                        p_leased_at, p_gold_draw, p_shuffle, p_expire_batch,
                                        p_progress_cap) AS n;
END
$function$;
