-- Trigger function on annotation_comparison: a comparison moved to another project moves its
-- judgements' tallies with it (one judgement per annotator and comparison, so each of its
-- annotators moves by one).
CREATE OR REPLACE FUNCTION annotation_comparison_tally()
RETURNS trigger
LANGUAGE plpgsql
AS $function$
BEGIN
        UPDATE annotation_judgementtally SET judgements = judgements - 1
         WHERE project_id = OLD.project_id
           AND annotator_id IN (SELECT j.annotator_id FROM annotation_judgement j WHERE j.comparison_id = OLD.id);
        INSERT INTO annotation_judgementtally (annotator_id, project_id, judgements)
        SELECT j.annotator_id, NEW.project_id, 1
          FROM annotation_judgement j WHERE j.comparison_id = NEW.id
            ON CONFLICT (annotator_id, project_id)
            DO UPDATE SET judgements = annotation_judgementtally.judgements + 1;
    RETURN NULL;
END
$function$;
