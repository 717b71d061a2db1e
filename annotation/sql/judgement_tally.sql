-- Trigger function on annotation_judgement: keeps one row per (annotator, project) in
-- annotation_judgementtally with their number of judgements there ("done" in queue_next).
-- A delete only ever updates: deleting a project or a user makes Django delete its tally rows
-- and its judgements in an order of its choosing, and a delete trigger that inserted would bring
-- back a row just deleted, pointing at a parent about to go (the deferred foreign key would then
-- fail the whole delete at commit). An update (the admin moves a judgement) takes one off and adds one.
CREATE OR REPLACE FUNCTION annotation_judgement_tally()
RETURNS trigger
LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE annotation_judgementtally SET judgements = judgements - 1
         WHERE annotator_id = OLD.annotator_id
           AND project_id = (SELECT c.project_id FROM annotation_comparison c WHERE c.id = OLD.comparison_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO annotation_judgementtally (annotator_id, project_id, judgements)
        SELECT NEW.annotator_id, c.project_id, 1
          FROM annotation_comparison c WHERE c.id = NEW.comparison_id
            ON CONFLICT (annotator_id, project_id)
            DO UPDATE SET judgements = annotation_judgementtally.judgements + 1;
    END IF;
    RETURN NULL;
END
$function$;
