-- The digest an API token is stored under: SHA-256 of the key's UTF-8 bytes, as lowercase hex.
-- The SQL copy of annotation.token_keys.key_digest, which is the definition
-- (tests/annotation/test_api_tokens.py checks that both agree). sha256() is built in since
-- PostgreSQL 11: no extension. LANGUAGE sql and IMMUTABLE, so it is inlined into principal.sql.
CREATE OR REPLACE FUNCTION annotation_token_digest(p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT
AS $function$
    SELECT encode(sha256(convert_to(p_key, 'UTF8')), 'hex')
$function$;
