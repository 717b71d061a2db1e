-- Moves an annotation_judgementtally count: p_by (1 or -1) judgements for each of p_annotators
-- in p_project. Adding creates the row if needed; taking off only ever updates: deleting a
-- project or a user makes Django delete its tally rows and its judgements in an order of its
-- choosing, and a delete that inserted would bring back a row just deleted, pointing at a parent
-- about to go (the deferred foreign key would then fail the whole delete at commit).
-- judgement_tally.sql and comparison_tally.sql both call it.
CREATE OR REPLACE FUNCTION annotation_tally_add(
    p_annotators integer[],
    p_project bigint,
    p_by integer
)
RETURNS void
LANGUAGE plpgsql
AS $function$
BEGIN
    IF p_by < 0 THEN
        UPDATE annotation_judgementtally t SET judgements = t.judgements + p_by
         WHERE t.project_id = p_project AND t.annotator_id = ANY (p_annotators);
    ELSIF p_project IS NOT NULL THEN
        INSERT INTO annotation_judgementtally (annotator_id, project_id, judgements)
        SELECT a.id, p_project, p_by FROM unnest(p_annotators) AS a(id)
            ON CONFLICT (annotator_id, project_id)
            DO UPDATE SET judgements = annotation_judgementtally.judgements + p_by;
    END IF;
END
$function$;
