-- A user's API tokens are deleted when their password changes or their account is deactivated,
-- whichever path wrote the row (the admin, a shell, the API, a migration): a token that leaked
-- dies with the password. Attached to auth_user by token_triggers.sql; AFTER UPDATE, so the
-- row's write itself is never refused.
CREATE OR REPLACE FUNCTION annotation_token_revoke()
RETURNS trigger
LANGUAGE plpgsql
AS $function$
BEGIN
    DELETE FROM annotation_apitoken WHERE user_id = NEW.id;
    RETURN NULL;
END
$function$;
