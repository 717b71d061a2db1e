-- The triggers that run judgement_tally.sql and comparison_tally.sql. Not a function: loaded
-- after them, and compared with pg_get_triggerdef by tests/annotation/test_sql_files.py.
CREATE TRIGGER annotation_judgement_tally_insert AFTER INSERT ON annotation_judgement
FOR EACH ROW EXECUTE FUNCTION annotation_judgement_tally();

CREATE TRIGGER annotation_judgement_tally_delete AFTER DELETE ON annotation_judgement
FOR EACH ROW EXECUTE FUNCTION annotation_judgement_tally();

CREATE TRIGGER annotation_judgement_tally_update AFTER UPDATE OF annotator_id, comparison_id
ON annotation_judgement FOR EACH ROW
WHEN (OLD.annotator_id <> NEW.annotator_id OR OLD.comparison_id <> NEW.comparison_id)
EXECUTE FUNCTION annotation_judgement_tally();

CREATE TRIGGER annotation_comparison_tally_update AFTER UPDATE OF project_id
ON annotation_comparison FOR EACH ROW
WHEN (OLD.project_id <> NEW.project_id)
EXECUTE FUNCTION annotation_comparison_tally();
