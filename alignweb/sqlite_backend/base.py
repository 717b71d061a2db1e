"""Django's SQLite backend, with table rebuilds that keep the database's triggers.

SQLite alters most columns by rebuilding the table: create a copy, move the rows, drop the old
table, rename the copy. Dropping the table drops its triggers, and the rename (SQLite 3.26+)
re-checks every trigger in the schema, so one whose body names the dropped table fails the whole
migration ("error in trigger ...: no such table"). The judgement tally's triggers (annotation
migration 0008) name ``annotation_judgement``, ``annotation_comparison`` and
``annotation_judgementtally`` from one another's tables, so altering a column of any of the three
would fail on the laptop default while PostgreSQL, which alters in place, went through.

This editor lifts every trigger out before a rebuild and puts each back afterwards from its own
stored text. A trigger that no longer fits the rebuilt table (a column it names was removed) fails
the migration, which then rolls back whole, as it should: its author must rewrite the trigger.
"""

import contextlib

from django.db.backends.sqlite3 import base, schema


class DatabaseSchemaEditor(schema.DatabaseSchemaEditor):
    def _remake_table(self, model, create_field=None, delete_field=None, alter_fields=None):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            triggers = cursor.fetchall()
        for name, _ in triggers:
            self.execute(f"DROP TRIGGER {self.quote_name(name)}", params=None)
        try:
            super()._remake_table(
                model, create_field=create_field, delete_field=delete_field, alter_fields=alter_fields
            )
        except Exception:
            # Inside a transaction the rollback brings the triggers back; outside one (a migration
            # with atomic = False), put back what the failed rebuild left out before raising.
            if not self.connection.in_atomic_block:
                with contextlib.suppress(Exception):  # the rebuild's own error is the one to report
                    self._create_missing(triggers)
            raise
        self._create_missing(triggers)

    def _create_missing(self, triggers: list[tuple[str, str]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            present = {name for (name,) in cursor.fetchall()}
        for name, sql in triggers:
            if name not in present:
                self.execute(sql, params=None)


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
