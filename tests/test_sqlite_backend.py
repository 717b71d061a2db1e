"""On SQLite a migration that alters a column rebuilds the table; ``alignweb.sqlite_backend`` keeps
the triggers through the rebuild (the judgement tally's name each other's tables)."""

import pytest
from django.db import connection, models
from django.db.backends.sqlite3.schema import DatabaseSchemaEditor as DjangoSchemaEditor
from django.db.utils import OperationalError

from annotation.models import Comparison, Judgement, JudgementTally
from tests.annotation.test_tally import assert_tally, judge_next
from tests.factories import ComparisonFactory

pytestmark = [
    pytest.mark.sqlite_too,
    pytest.mark.django_db(transaction=True),  # SQLite's schema editor refuses to run inside a transaction
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="SQLite rebuilds tables; PostgreSQL alters them"
    ),
]


def triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {name for (name,) in cursor.fetchall()}


@pytest.fixture
def judged(project, annotator):
    for _ in range(3):
        ComparisonFactory.create_pair(project=project)
    judge_next(project, annotator)
    return project, annotator


def test_it_is_the_backend_in_use_on_sqlite():
    assert connection.settings_dict["ENGINE"] == "alignweb.sqlite_backend"
    assert connection.vendor == "sqlite"


@pytest.mark.parametrize("model", [Judgement, Comparison, JudgementTally])
def test_a_rebuilt_table_keeps_every_trigger_and_the_tally_keeps_counting(judged, model):
    project, annotator = judged
    before = triggers()
    assert len(before) >= 4

    with connection.schema_editor() as editor:
        editor._remake_table(model)  # what most AlterField operations do on SQLite

    assert triggers() == before
    judge_next(project, annotator)
    assert_tally({(annotator.pk, project.pk): 2})


def test_a_real_column_change_on_judgements_goes_through(judged):
    project, annotator = judged
    old = Judgement._meta.get_field("rationale")
    new = models.TextField(blank=True, default="", null=True)  # a rebuild on SQLite
    new.set_attributes_from_name("rationale")
    new.model = Judgement

    with connection.schema_editor() as editor:
        editor.alter_field(Judgement, old, new)
    try:
        judge_next(project, annotator)
        assert_tally({(annotator.pk, project.pk): 2})
    finally:
        with connection.schema_editor() as editor:
            editor.alter_field(Judgement, new, old)


def test_djangos_own_editor_fails_the_same_rebuild(judged):
    """Why the backend exists: the stock rebuild trips over a trigger naming the dropped table, and
    the migration rolls back with the triggers untouched."""
    before = triggers()
    with pytest.raises(OperationalError, match="error in trigger"), DjangoSchemaEditor(connection) as editor:
        editor._remake_table(Judgement)
    assert triggers() == before


def test_a_rebuild_that_fails_outside_a_transaction_puts_the_triggers_back(judged, monkeypatch):
    before = triggers()

    def fails(self, model, **kwargs):
        raise RuntimeError("the rebuild failed")

    monkeypatch.setattr(DjangoSchemaEditor, "_remake_table", fails)
    with (
        pytest.raises(RuntimeError, match="rebuild failed"),
        connection.schema_editor(atomic=False) as editor,
    ):
        editor._remake_table(Judgement)
    assert triggers() == before
