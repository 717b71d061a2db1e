-- The trigger that runs token_revoke.sql. Not a function: loaded after it, and compared with the
-- database's triggers by tests/annotation/test_sql_files.py.
CREATE TRIGGER annotation_token_revoke AFTER UPDATE OF password, is_active
ON auth_user FOR EACH ROW
WHEN (OLD.password IS DISTINCT FROM NEW.password OR (OLD.is_active AND NOT NEW.is_active))
EXECUTE FUNCTION annotation_token_revoke();
