"""Each annotator's "done" in a project, kept by the database in ``JudgementTally``.

"Next" returns the annotator's progress with every item, and "done" was a count of their
judgements in the project: one correlated lookup per judgement, so it grew with their work
(0.53 ms of the call at 466 judgements, auto_explain on the load bench's database). Now triggers
on ``annotation_judgement`` keep one row per (annotator, project), and "done" is one probe of its
unique index, on PostgreSQL (``annotation_queue_next``, rewritten here as 0007 rewrote 0004) and
SQLite (``annotation.selectors._PROGRESS_SQL``) alike.

The triggers, on both databases, run the same two statements:

- ``TALLY_ADD`` (after an insert) adds one, creating the row if needed;
- ``TALLY_TAKE`` (after a delete) takes one off, and only ever updates: deleting a project or a
  user makes Django delete its tally rows and its judgements in an order of its choosing, and a
  delete trigger that inserted would bring back a row just deleted, pointing at a parent about to
  go (the deferred foreign key would then fail the whole delete at commit);
- both, in that order, when a judgement moves to another annotator or comparison (the admin can
  edit both); ``TALLY_MOVE_*`` do the same for the judgements of a comparison moved to another
  project (one judgement per annotator and comparison, so each of its annotators moves by one).

The backfill counts the judgements already stored; it runs after the triggers are created, which
locks ``annotation_judgement`` against writes on PostgreSQL until the migration commits, so no
judgement is counted twice or missed.

On SQLite most ``AlterField`` operations rebuild the table, which drops its triggers and, with
Django's own backend, fails the migration on these triggers' references to one another's tables;
``alignweb.sqlite_backend`` keeps the triggers through a rebuild (``tests/test_sqlite_backend.py``).
``tests/annotation/test_tally.py`` fails if a trigger is missing.
"""

import importlib

from django.conf import settings
from django.db import migrations, models

_v2 = importlib.import_module("annotation.migrations.0007_queue_next_waits_for_briefly_locked_items")

# Plain SQL that PostgreSQL (inside PL/pgSQL) and SQLite (inside CREATE TRIGGER) both run; NEW and
# OLD are the judgement, or below the comparison, the trigger fired for.
TALLY_ADD = """
        INSERT INTO annotation_judgementtally (annotator_id, project_id, judgements)
        SELECT NEW.annotator_id, c.project_id, 1
          FROM annotation_comparison c WHERE c.id = NEW.comparison_id
            ON CONFLICT (annotator_id, project_id)
            DO UPDATE SET judgements = annotation_judgementtally.judgements + 1;"""
TALLY_TAKE = """
        UPDATE annotation_judgementtally SET judgements = judgements - 1
         WHERE annotator_id = OLD.annotator_id
           AND project_id = (SELECT c.project_id FROM annotation_comparison c WHERE c.id = OLD.comparison_id);"""
TALLY_MOVE_TAKE = """
        UPDATE annotation_judgementtally SET judgements = judgements - 1
         WHERE project_id = OLD.project_id
           AND annotator_id IN (SELECT j.annotator_id FROM annotation_judgement j WHERE j.comparison_id = OLD.id);"""
TALLY_MOVE_ADD = """
        INSERT INTO annotation_judgementtally (annotator_id, project_id, judgements)
        SELECT j.annotator_id, NEW.project_id, 1
          FROM annotation_judgement j WHERE j.comparison_id = NEW.id
            ON CONFLICT (annotator_id, project_id)
            DO UPDATE SET judgements = annotation_judgementtally.judgements + 1;"""

JUDGEMENT_MOVED = "OLD.annotator_id <> NEW.annotator_id OR OLD.comparison_id <> NEW.comparison_id"
COMPARISON_MOVED = "OLD.project_id <> NEW.project_id"

TRIGGERS_POSTGRES = [
    f"""
CREATE OR REPLACE FUNCTION annotation_judgement_tally() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN{TALLY_TAKE}
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN{TALLY_ADD}
    END IF;
    RETURN NULL;
END
$fn$;
""",
    f"""
CREATE OR REPLACE FUNCTION annotation_comparison_tally() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN{TALLY_MOVE_TAKE}{TALLY_MOVE_ADD}
    RETURN NULL;
END
$fn$;
""",
    """
CREATE TRIGGER annotation_judgement_tally_insert AFTER INSERT ON annotation_judgement
FOR EACH ROW EXECUTE FUNCTION annotation_judgement_tally();
""",
    """
CREATE TRIGGER annotation_judgement_tally_delete AFTER DELETE ON annotation_judgement
FOR EACH ROW EXECUTE FUNCTION annotation_judgement_tally();
""",
    f"""
CREATE TRIGGER annotation_judgement_tally_update AFTER UPDATE OF annotator_id, comparison_id
ON annotation_judgement FOR EACH ROW WHEN ({JUDGEMENT_MOVED})
EXECUTE FUNCTION annotation_judgement_tally();
""",
    f"""
CREATE TRIGGER annotation_comparison_tally_update AFTER UPDATE OF project_id
ON annotation_comparison FOR EACH ROW WHEN ({COMPARISON_MOVED})
EXECUTE FUNCTION annotation_comparison_tally();
""",
]

DROP_TRIGGERS_POSTGRES = [
    "DROP TRIGGER IF EXISTS annotation_judgement_tally_insert ON annotation_judgement;",
    "DROP TRIGGER IF EXISTS annotation_judgement_tally_delete ON annotation_judgement;",
    "DROP TRIGGER IF EXISTS annotation_judgement_tally_update ON annotation_judgement;",
    "DROP TRIGGER IF EXISTS annotation_comparison_tally_update ON annotation_comparison;",
    "DROP FUNCTION IF EXISTS annotation_judgement_tally();",
    "DROP FUNCTION IF EXISTS annotation_comparison_tally();",
]

TRIGGERS_SQLITE = [
    f"""
CREATE TRIGGER annotation_judgement_tally_insert AFTER INSERT ON annotation_judgement
BEGIN{TALLY_ADD}
END;
""",
    f"""
CREATE TRIGGER annotation_judgement_tally_delete AFTER DELETE ON annotation_judgement
BEGIN{TALLY_TAKE}
END;
""",
    f"""
CREATE TRIGGER annotation_judgement_tally_update AFTER UPDATE OF annotator_id, comparison_id
ON annotation_judgement WHEN {JUDGEMENT_MOVED}
BEGIN{TALLY_TAKE}{TALLY_ADD}
END;
""",
    f"""
CREATE TRIGGER annotation_comparison_tally_update AFTER UPDATE OF project_id
ON annotation_comparison WHEN {COMPARISON_MOVED}
BEGIN{TALLY_MOVE_TAKE}{TALLY_MOVE_ADD}
END;
""",
]

DROP_TRIGGERS_SQLITE = [
    "DROP TRIGGER IF EXISTS annotation_judgement_tally_insert;",
    "DROP TRIGGER IF EXISTS annotation_judgement_tally_delete;",
    "DROP TRIGGER IF EXISTS annotation_judgement_tally_update;",
    "DROP TRIGGER IF EXISTS annotation_comparison_tally_update;",
]

# Counts every stored judgement afresh. Needs no concurrent writes to annotation_judgement (the
# migration holds the triggers' table lock; anywhere else, lock the table first).
BACKFILL = [
    "DELETE FROM annotation_judgementtally;",
    """
INSERT INTO annotation_judgementtally (annotator_id, project_id, judgements)
SELECT j.annotator_id, c.project_id, count(*)
  FROM annotation_judgement j JOIN annotation_comparison c ON c.id = j.comparison_id
 GROUP BY j.annotator_id, c.project_id;
""",
]


def _run(connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def create_triggers(apps, schema_editor):
    connection = schema_editor.connection
    _run(connection, TRIGGERS_POSTGRES if connection.vendor == "postgresql" else TRIGGERS_SQLITE)


def drop_triggers(apps, schema_editor):
    connection = schema_editor.connection
    _run(connection, DROP_TRIGGERS_POSTGRES if connection.vendor == "postgresql" else DROP_TRIGGERS_SQLITE)


def backfill(apps, schema_editor):
    _run(schema_editor.connection, BACKFILL)


# "done" in annotation_queue_next (0007's text) reads the tally instead of counting judgements.
DONE = (
    """        -- The same two counts as annotation.selectors.project_progress.
        SELECT /* queue:progress-done */ count(*) INTO progress_done
          FROM annotation_judgement j
         WHERE j.annotator_id = p_user
           AND (SELECT c.project_id FROM annotation_comparison c WHERE c.id = j.comparison_id) = p_project;
""",
    """        -- The same two figures as annotation.selectors.project_progress; done from the tally.
        SELECT /* queue:progress-done */ coalesce((
                   SELECT t.judgements FROM annotation_judgementtally t
                    WHERE t.annotator_id = p_user AND t.project_id = p_project), 0)
          INTO progress_done;
""",
)
if _v2.NEXT_SQL.count(DONE[0]) != 1:
    raise RuntimeError("annotation_queue_next (0007) is not the text this migration rewrites.")
NEXT_SQL = _v2.NEXT_SQL.replace(*DONE)


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0007_queue_next_waits_for_briefly_locked_items"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="JudgementTally",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("judgements", models.PositiveIntegerField(default=0)),
                (
                    "annotator",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=models.CASCADE,
                        related_name="judgement_tallies",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=models.CASCADE,
                        related_name="judgement_tallies",
                        to="annotation.project",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("annotator", "project"), name="one_tally_per_annotator_and_project"
                    )
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunPython(_v2._create(NEXT_SQL), _v2._create(_v2.NEXT_SQL)),
    ]
