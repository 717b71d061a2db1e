-- "Next" by project slug, the caller's role checked in the same call: superusers act as admins
-- of every project, anyone else needs a membership whose role is in p_roles. An outsider gets
-- 'no-project' (a 404), a member with another role 'forbidden' and their role (a 403 naming it).
CREATE OR REPLACE FUNCTION annotation_queue_next_in(
    p_user integer,
    p_superuser boolean,
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

    SELECT n.lease_id, n.lease_display_order, n.lease_leased_at, n.lease_expires_at, n.item_id,
           n.item_prompt_id, n.item_open_slots, n.item_messages, n.item_slots, n.progress_done,
           n.progress_open
      INTO lease_id, lease_display_order, lease_leased_at, lease_expires_at, item_id,
           item_prompt_id, item_open_slots, item_messages, item_slots, progress_done,
           progress_open
      FROM annotation_queue_next(p_user, project_id, p_now, p_leased_at,
                                 p_now + make_interval(secs => project_lease_seconds), project_gold_rate,
                                 p_gold_draw, p_shuffle, p_expire_batch, p_progress_cap) AS n;
    outcome := CASE WHEN FOUND THEN 'leased' ELSE 'empty' END;
    RETURN NEXT;
END
$function$;
