-- Who a vote-path call acts for, as one row (principal_id, principal_is_superuser, refusal). With
-- no key it is the session's user, as the caller says. With an API token's key it is the token's
-- user, looked up by the key's digest (annotation_token_digest) as annotation.token_bearer does:
-- refusal 'bad-token' for an unknown key, 'expired' for a token past its expiry (at the statement's
-- start: now() would be the transaction's), 'inactive' for an inactive user (and the caller then
-- does nothing else). A single SELECT in LANGUAGE sql and
-- STABLE, so PostgreSQL inlines it into the statement that calls it. Names the user table
-- auth_user (see queue_next.sql).
CREATE OR REPLACE FUNCTION annotation_principal(
    p_key text,
    p_user integer,
    p_superuser boolean
)
RETURNS TABLE (
    principal_id integer,
    principal_is_superuser boolean,
    refusal text
)
LANGUAGE sql
STABLE
AS $function$
    SELECT /* auth:token */ u.id, u.is_superuser,
           CASE WHEN u.id IS NULL THEN 'bad-token'
                WHEN t.expires_at <= statement_timestamp() THEN 'expired'
                WHEN u.is_active IS NOT TRUE THEN 'inactive' END
      FROM (SELECT annotation_token_digest(p_key) AS digest) AS k
      LEFT JOIN annotation_apitoken t ON t.digest = k.digest
      LEFT JOIN auth_user u ON u.id = t.user_id
     WHERE p_key IS NOT NULL
    UNION ALL
    SELECT p_user, p_superuser, NULL WHERE p_key IS NULL
$function$;
