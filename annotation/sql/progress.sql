-- An annotator's progress in a project as two counts: "done", their judgements there, read from
-- the tally that judgement_tally.sql keeps (one probe of its unique index, where counting their
-- judgements grew with their work); and the items still open to them, counted up to p_cap down
-- the queue index in queue order (without the ORDER BY PostgreSQL picked the primary key and
-- walked other projects' rows first). The items they touched are excluded with NOT IN, which
-- PostgreSQL hashes once; NOT EXISTS became a nested loop that compared every walked item with
-- every touched one. Projects with gold_rate 0 never serve gold items, so those are not counted.
-- "Next" (queue_next.sql) and annotation.selectors.project_progress both call it.
CREATE OR REPLACE FUNCTION annotation_progress(
    p_user integer,
    p_project bigint,
    p_gold_rate double precision,
    p_cap integer
)
RETURNS TABLE (
    progress_done bigint,
    progress_open bigint
)
LANGUAGE plpgsql
AS $function$
BEGIN
    SELECT /* queue:progress-done */ coalesce((
               SELECT t.judgements FROM annotation_judgementtally t
                WHERE t.annotator_id = p_user AND t.project_id = p_project), 0)
      INTO progress_done;
    IF p_gold_rate > 0 THEN
        SELECT /* queue:progress */ count(*) INTO progress_open FROM (
            SELECT c.id FROM annotation_comparison c
             WHERE c.project_id = p_project AND c.open_slots > 0
               AND c.id NOT IN (SELECT t.comparison_id FROM annotation_assignment t
                                 WHERE t.annotator_id = p_user AND t.status <> 'expired')
             ORDER BY c.is_gold, c.priority DESC, c.id
             LIMIT p_cap) AS open_to_them;
    ELSE
        SELECT /* queue:progress */ count(*) INTO progress_open FROM (
            SELECT c.id FROM annotation_comparison c
             WHERE c.project_id = p_project AND c.open_slots > 0 AND c.is_gold = false
               AND c.id NOT IN (SELECT t.comparison_id FROM annotation_assignment t
                                 WHERE t.annotator_id = p_user AND t.status <> 'expired')
             ORDER BY c.is_gold, c.priority DESC, c.id
             LIMIT p_cap) AS open_to_them;
    END IF;
    RETURN NEXT;
END
$function$;
