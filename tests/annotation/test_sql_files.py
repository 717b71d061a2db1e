"""The SQL files in annotation/sql/ are what the migrated database runs, and nothing runs without one."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from annotation import sql

pytestmark = pytest.mark.django_db


def normalised(definition: str) -> str:
    """One function's definition without comments before it, schema prefix, or layout."""
    lines = definition.strip().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    text = "\n".join(lines).strip().removesuffix(";")
    text = text.replace("FUNCTION public.", "FUNCTION ", 1)
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"\s*([(),])\s*", r"\1", text)


def database_functions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
            " WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'annotation\\_%'"
        )
        return dict(cursor.fetchall())


@pytest.mark.parametrize("name", sql.function_names())
def test_each_file_is_the_function_the_database_holds(name):
    held = database_functions().get(f"annotation_{name}")

    assert held is not None, f"annotation_{name} is not in the migrated database"
    assert normalised(sql.text(name)) == normalised(held)


def test_every_annotation_function_in_the_database_has_a_file():
    files = {f"annotation_{name}" for name in sql.function_names()}
    assert set(database_functions()) <= files


def test_the_triggers_are_those_the_files_create():
    declared = set()
    for name in sql.TRIGGER_FILES:
        declared |= set(
            re.findall(
                r"CREATE TRIGGER (\w+) .*? ON (\w+) .*?EXECUTE FUNCTION (\w+)\(\)",
                re.sub(r"\s+", " ", sql.text(name)),
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname, t.tgrelid::regclass::text, t.tgfoid::regproc::text FROM pg_trigger t"
            " WHERE NOT t.tgisinternal"
        )
        held = set(cursor.fetchall())

    assert declared == held
    assert len(declared) == 5  # four tally triggers, one token revocation


def test_the_user_model_keeps_its_users_where_the_sql_looks_for_them():
    sql.check_user_model(get_user_model())  # the migration runs this check before loading


def test_a_user_model_with_another_table_is_refused():
    class Meta:
        db_table = "accounts_person"
        pk = get_user_model()._meta.pk

    class OtherUser:
        _meta = Meta

    with pytest.raises(RuntimeError, match="accounts_person"):
        sql.check_user_model(OtherUser)
