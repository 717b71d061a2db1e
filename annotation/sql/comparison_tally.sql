-- Trigger function on annotation_comparison: a comparison moved to another project moves its
-- judgements' tallies with it (one judgement per annotator and comparison, so each of its
-- annotators moves by one), through annotation_tally_add.
CREATE OR REPLACE FUNCTION annotation_comparison_tally()
RETURNS trigger
LANGUAGE plpgsql
AS $function$
DECLARE
    v_annotators integer[];
BEGIN
    v_annotators := ARRAY(SELECT j.annotator_id FROM annotation_judgement j WHERE j.comparison_id = NEW.id);
    PERFORM annotation_tally_add(v_annotators, OLD.project_id, -1);
    PERFORM annotation_tally_add(v_annotators, NEW.project_id, 1);
    RETURN NULL;
END
$function$;
