"""The vote path's SQL: one file per function, each a whole ``CREATE OR REPLACE FUNCTION``.

PL/pgSQL mostly; ``principal.sql`` and ``token_digest.sql`` are LANGUAGE sql so that PostgreSQL
inlines them into their callers.

``annotation_<name>`` is defined in ``<name>.sql``; ``tally_triggers.sql`` attaches the two tally
functions to their tables, ``token_triggers.sql`` the token revocation to the user table.
Migration ``annotation.0003_vote_path_sql`` loads the functions and the tally triggers,
``annotation.0004_auth`` the token files, and ``tests/annotation/test_sql_files.py`` checks that
each file is what the migrated database holds.
To change a function, edit its file and add a migration that runs ``load(schema_editor, [name])``
(``CREATE OR REPLACE`` replaces it in place; a changed signature needs a ``DROP FUNCTION`` first).
"""

from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent
TRIGGERS = "tally_triggers"
TOKEN_TRIGGERS = "token_triggers"
TRIGGER_FILES = (TRIGGERS, TOKEN_TRIGGERS)

# Table and key column the functions name for the user model (lease_take locks the annotator's
# row; principal joins the token to its user; token_triggers watches it).
USER_TABLE = "auth_user"
USER_PK = "id"


def function_names() -> list[str]:
    """Every function file's name without ``.sql`` (the function is ``annotation_<name>``)."""
    return sorted(path.stem for path in SQL_DIR.glob("*.sql") if path.stem not in TRIGGER_FILES)


def text(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


def check_user_model(user_model) -> None:
    """Refuse a user model whose table is not the one the SQL files name."""
    table, pk = user_model._meta.db_table, user_model._meta.pk.column
    if (table, pk) != (USER_TABLE, USER_PK):
        raise RuntimeError(
            f"annotation/sql/ names the user table {USER_TABLE}({USER_PK}), but AUTH_USER_MODEL "
            f"keeps its users in {table}({pk}). Change the files (lease_take.sql, "
            "principal.sql) and annotation.sql.USER_TABLE."
        )


def load(schema_editor, names: list[str]) -> None:
    """Run the named files (functions, or trigger files) in the given order.

    A LANGUAGE sql function's body is checked when it is created, against the tables of that
    moment; an earlier migration that loads the current files may run before a table they name
    exists (principal.sql names annotation_apitoken, made by 0004), so the check is off for the
    migration's transaction. The bodies are checked when the functions first run, and by
    tests/annotation/test_sql_files.py.
    """
    schema_editor.execute("SET LOCAL check_function_bodies = off", params=None)
    for name in names:
        schema_editor.execute(text(name), params=None)
