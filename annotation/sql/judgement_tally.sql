-- Trigger function on annotation_judgement: keeps one row per (annotator, project) in
-- annotation_judgementtally with their number of judgements there ("done" in queue_next), through
-- annotation_tally_add. An update (the admin moves a judgement) takes one off and adds one.
CREATE OR REPLACE FUNCTION annotation_judgement_tally()
RETURNS trigger
LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM annotation_tally_add(
            ARRAY[OLD.annotator_id],
            (SELECT c.project_id FROM annotation_comparison c WHERE c.id = OLD.comparison_id), -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM annotation_tally_add(
            ARRAY[NEW.annotator_id],
            (SELECT c.project_id FROM annotation_comparison c WHERE c.id = NEW.comparison_id), 1);
    END IF;
    RETURN NULL;
END
$function$;
