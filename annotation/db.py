"""A cursor for the few statements every vote runs: bound on the server and prepared.

Django's psycopg cursors bind client-side: each execute quotes every parameter into the SQL text
and PostgreSQL parses and plans the statement anew. For the token lookup and the two function
calls of a vote (``annotation.api.authentication``, ``annotation.services.queue`` and
``.judgements``), building that text was ~8% of the web process's CPU under the load bench. This
cursor sends the parameters apart and has psycopg prepare each statement on first use, once per
connection, so later runs send only the values. Everything else keeps Django's cursors.

It is Django's cursor wrapper around a plain ``psycopg.Cursor``: errors are Django's and a broken
transaction is refused. While Django logs queries (``DEBUG``, ``assertNumQueries``) it is Django's
own cursor instead, so the log and the query counts stay as they were.

Statements run through it must be typed without Django's help: parameters are sent with the
types psycopg gives them (``int`` as the smallest integer type that holds it, ``None`` as
unknown), so cast in the SQL where PostgreSQL could not infer the type. Prepared statements live
in the server session: a pooler in transaction mode (PgBouncer before 1.21) would break them.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg import Cursor
from psycopg.postgres import types
from psycopg.pq import Format

_TIMESTAMPTZ_OID = types["timestamptz"].oid

# Django opens connections with automatic preparing off (prepare_threshold=None), and psycopg
# then ignores prepare=True as well. A threshold no statement reaches turns explicit preparing
# back on without letting psycopg prepare anything by count. Django's own cursors bind
# client-side, and psycopg never prepares those whatever the threshold.
_ONLY_WHEN_ASKED = 2**31


class _PreparedCursor(Cursor):
    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def prepared_cursor():
    """A cursor (use it with ``with``) whose statements are bound on the server and prepared."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each attribute of the ``connection`` proxy is a lookup
    if db.queries_logged:
        # DEBUG or assertNumQueries: Django's own cursor, whose log shows each statement with its
        # values (psycopg keeps no statement text to log on the prepared path).
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = db.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    with db.wrap_database_errors:
        cursor = _PreparedCursor(raw)
    # As Django's create_cursor: times come back in the connection's zone even if it changed.
    if raw.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT).timezone != db.timezone:
        register_tzloader(db.timezone, cursor)
    return db.make_cursor(cursor)
