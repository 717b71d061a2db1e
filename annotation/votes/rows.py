"""The row sources of a vote selection: the comparisons and judgements it reads, grouped one
comparison at a time, in comparison id order, so memory stays constant however large the project.

Two sources give the same groups (``tests/annotation/test_export_fast_path.py``): one
``COPY (... UNION ALL ...) TO STDOUT`` (the default, fast) and two server-side cursors merged
in Python (``fast=False``, simpler to reason about and the reference the fast one is tested on).
"""

import json
from collections.abc import Iterator

from django.db import connection
from django.db.models import CharField, Func

CHUNK = 10_000  # rows per round trip of the server-side cursors

# The columns every reader of a selection gets, in this order, from either row source.
COMPARISON_FIELDS = (
    "id",
    "prompt_id",
    "prompt__messages",
    "slot_a__response_id",
    "slot_a__response__text",
    "slot_b__response__text",
    "slot_a__response__model_version_name",
    "slot_a__response__source_name",
    "slot_b__response__model_version_name",
    "slot_b__response__source_name",
    "prior_choice",
    "prior_source",
    "is_gold",
    "gold_choice",
    "created",
)
JUDGEMENT_FIELDS = (
    "comparison_id",
    "id",
    "annotator_id",
    "choice",
    "strength",
    "rationale",
    "duration_ms",
    "left_response_id",
    "created",
)
# PostgreSQL types of those columns as the COPY source casts and loads them.
_COMPARISON_TYPES = (
    "int8",
    "int8",
    "text",  # the messages as JSON text, decoded here: Django's jsonb loader leaves them as text
    "int8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "bool",
    "text",
    "text",
)
_JUDGEMENT_TYPES = ("int8", "int8", "int8", "text", "int4", "text", "int4", "int8", "text")

_STREAMING_PLAN = (
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("max_parallel_workers_per_gather", 0),
)
Group = tuple[tuple, list[tuple]]  # (comparison row, its judgement rows in id order)


class IsoUtc(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by the database: turning millions of
    timestamps into datetime objects in Python costs more than all the rest of a vote row."""

    output_field = CharField()
    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def groups_by_cursors(comparisons, judgements) -> Iterator[Group]:
    """Two server-side cursors, both ordered by comparison id, merged one comparison at a time."""
    comparison_rows = comparisons.order_by("id").iterator(chunk_size=CHUNK)
    judgement_rows = judgements.order_by("comparison_id", "id").iterator(chunk_size=CHUNK)
    pending = next(judgement_rows, None)
    for row in comparison_rows:
        comparison_id = row[0]
        # Judgements of comparisons filtered out above come first in the merge: skip them.
        while pending is not None and pending[0] < comparison_id:
            pending = next(judgement_rows, None)
        votes = []
        while pending is not None and pending[0] == comparison_id:
            votes.append(pending)
            pending = next(judgement_rows, None)
        yield row, votes


def _copy_sql(comparisons, judgements) -> tuple[str, tuple]:
    """Both selections as ONE ``COPY``, each comparison row followed by its judgements."""
    # Each half in comparison id order, so the server merges two ordered streams and sends the
    # first rows at once instead of sorting everything first: Python then works while PostgreSQL
    # reads, which on a busy machine matters more than the server's CPU.
    c_sql, c_params = comparisons.order_by("id").query.sql_with_params()
    j_sql, j_params = judgements.order_by("comparison_id", "id").query.sql_with_params()
    c_cols = [f"c{i}" for i in range(len(COMPARISON_FIELDS))]
    j_cols = [f"j{i}" for i in range(len(JUDGEMENT_FIELDS))]
    c_values = [f"{col}::{kind}" for col, kind in zip(c_cols, _COMPARISON_TYPES, strict=True)]
    j_values = [f"{col}::{kind}" for col, kind in zip(j_cols, _JUDGEMENT_TYPES, strict=True)]
    c_nulls = [f"NULL::{kind}" for kind in _COMPARISON_TYPES]
    j_nulls = [f"NULL::{kind}" for kind in _JUDGEMENT_TYPES]
    # Rows sort by comparison id, the comparison (judgement id NULL) first, then its judgements.
    sql = (
        f"COPY (SELECT c0::int8, NULL::int8, {', '.join(c_values + j_nulls)}"
        f" FROM ({c_sql}) AS c({', '.join(c_cols)})"
        f" UNION ALL SELECT j0::int8, j1::int8, {', '.join(c_nulls + j_values)}"
        f" FROM ({j_sql}) AS j({', '.join(j_cols)})"
        " ORDER BY 1, 2 NULLS FIRST) TO STDOUT (FORMAT BINARY)"
    )
    return sql, (*c_params, *j_params)


def groups_by_copy(comparisons, judgements) -> Iterator[Group]:
    """The same groups as ``groups_by_cursors`` from one ``COPY ... TO STDOUT``: the server
    streams while Python works (a cursor makes each side wait for the other at every fetch), and
    rows skip Django's per-value converters. No other query can run on the connection meanwhile."""
    sql, params = _copy_sql(comparisons, judgements)
    split = 2 + len(COMPARISON_FIELDS)
    loads = json.loads
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # the psycopg cursor under Django's wrapper
        # Index-ordered nested loops stream; hash joins (the planner's pick for a whole table)
        # must finish and be sorted before the first row leaves the server.
        for name, value in _STREAMING_PLAN:
            cursor.execute(f"SET LOCAL {name} = {value}")
        with cursor.copy(sql, params) as copy:
            copy.set_types(["int8", "int8", *_COMPARISON_TYPES, *_JUDGEMENT_TYPES])
            comparison = None
            votes: list[tuple] = []
            for row in copy.rows():
                if row[1] is not None:
                    if comparison is not None and row[0] == comparison[0]:
                        votes.append(row[split:])
                    # else: a judgement of a comparison the filters left out
                    continue
                if comparison is not None:
                    yield comparison, votes
                comparison = row[2:split]
                comparison = (comparison[0], comparison[1], loads(comparison[2]), *comparison[3:])
                votes = []
            if comparison is not None:
                yield comparison, votes
        for name, _ in _STREAMING_PLAN:
            cursor.execute(f"RESET {name}")
