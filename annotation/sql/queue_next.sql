-- "Next", in one round trip: who asks (annotation_principal: the session's user, or an API
-- token's), in which project, the lease (annotation_lease_take), the item as shown, and progress.
-- The project is p_project as given, or the one named p_slug with the caller's role checked:
-- superusers act as admins of every project, anyone else needs a membership whose role is in
-- p_roles. outcome is 'leased', 'empty' (nothing open to them), 'no-project' (an outsider: a
-- 404), 'forbidden' with member_role (a 403 naming it), or the token's refusal. "Done" is one
-- probe of the tally that annotation_judgement_tally keeps (annotation_progress).
CREATE OR REPLACE FUNCTION annotation_queue_next(
    p_key text,
    p_user integer,
    p_superuser boolean,
    p_project bigint,
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
BEGIN
    SELECT w.principal_id, w.principal_is_superuser, w.refusal
      INTO principal_id, principal_is_superuser, outcome
      FROM annotation_principal(p_key, p_user, p_superuser) AS w;
    IF outcome IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;

    IF p_project IS NOT NULL THEN
        SELECT /* queue:project */ p.id, p.gold_rate, p.lease_seconds, p.overlap
          INTO project_id, project_gold_rate, project_lease_seconds, project_overlap
          FROM annotation_project p WHERE p.id = p_project;
    ELSIF principal_is_superuser THEN
        SELECT /* queue:project */ p.id, p.gold_rate, p.lease_seconds, p.overlap, 'admin'
          INTO project_id, project_gold_rate, project_lease_seconds, project_overlap, member_role
          FROM annotation_project p WHERE p.slug = p_slug;
    ELSE
        SELECT /* queue:project */ p.id, p.gold_rate, p.lease_seconds, p.overlap, m.role
          INTO project_id, project_gold_rate, project_lease_seconds, project_overlap, member_role
          FROM annotation_project p
          JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = principal_id
         WHERE p.slug = p_slug;
    END IF;
    IF NOT FOUND THEN
        outcome := 'no-project';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_project IS NULL AND NOT member_role = ANY (p_roles) THEN
        outcome := 'forbidden';
        RETURN NEXT;
        RETURN;
    END IF;

    lease_id := annotation_lease_take(principal_id, project_id, p_now, p_leased_at,
                                      p_now + make_interval(secs => project_lease_seconds),
                                      project_gold_rate, p_gold_draw, p_shuffle, p_expire_batch);
    IF lease_id IS NULL THEN
        outcome := 'empty';
        RETURN NEXT;
        RETURN;
    END IF;
    outcome := 'leased';

    SELECT /* queue:lease */ a.display_order, a.leased_at, a.expires_at, c.id, c.prompt_id,
           c.open_slots, pr.messages
      INTO lease_display_order, lease_leased_at, lease_expires_at, item_id, item_prompt_id,
           item_open_slots, item_messages
      FROM annotation_assignment a
      JOIN annotation_comparison c ON c.id = a.comparison_id
      JOIN annotation_prompt pr ON pr.id = c.prompt_id
     WHERE a.id = lease_id;
    SELECT json_agg(json_build_array(cr.position, r.id, r.text))
      INTO item_slots
      FROM annotation_comparisonresponse cr JOIN annotation_response r ON r.id = cr.response_id
     WHERE cr.comparison_id = item_id;

    IF p_progress_cap IS NOT NULL THEN
        SELECT p.progress_done, p.progress_open INTO progress_done, progress_open
          FROM annotation_progress(principal_id, project_id, project_gold_rate, p_progress_cap) AS p;
    END IF;
    RETURN NEXT;
END
$function$;
