"""Every raw vote as Parquet (pyarrow), the same columns as ``votes``, written in row groups of
``ROW_GROUP`` rows so memory stays flat whatever the size. ``prompt`` is a list of
``{role, content}`` structs, ``created_at`` a UTC timestamp."""

import datetime as dt
from collections.abc import Iterable
from typing import BinaryIO

from annotation.exporters.base import (
    PAIR_COLUMNS,
    VOTE_COLUMNS,
    Exporter,
    Pair,
    WriteOptions,
    pair_values,
    register,
    vote_values,
    write_per_vote,
)

ROW_GROUP = 50_000


def _schema():
    import pyarrow as pa

    types = {
        "judgement_id": pa.int64(),
        "imported": pa.bool_(),
        "source": pa.string(),
        "annotator": pa.string(),
        "choice": pa.string(),
        "choice_shown": pa.string(),
        "strength": pa.int16(),
        "rationale": pa.string(),
        "duration_ms": pa.int64(),
        "left": pa.string(),
        "created_at": pa.timestamp("us", tz="UTC"),
        "comparison_id": pa.int64(),
        "prompt_id": pa.int64(),
        "is_gold": pa.bool_(),
        "gold_choice": pa.string(),
        "label": pa.string(),
        "agreement": pa.float64(),
        "model_a": pa.string(),
        "model_b": pa.string(),
        "prompt": pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])),
        "response_a": pa.string(),
        "response_b": pa.string(),
    }
    return pa.schema([(name, types[name]) for name in VOTE_COLUMNS + PAIR_COLUMNS])


@register
class ParquetExporter(Exporter):
    name = "parquet"
    extension = "parquet"
    content_type = "application/vnd.apache.parquet"

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema()
        names = VOTE_COLUMNS + PAIR_COLUMNS
        created_at = names.index("created_at")
        prompt = names.index("prompt")
        columns: list[list] = [[] for _ in names]
        with pq.ParquetWriter(out, schema) as writer:

            def flush() -> None:
                table = pa.Table.from_pydict(dict(zip(names, columns, strict=True)), schema=schema)
                writer.write_table(table, row_group_size=ROW_GROUP)
                for column in columns:
                    column.clear()

            def write_pair(pair: Pair) -> None:
                tail = list(pair_values(pair))
                tail[prompt - len(VOTE_COLUMNS)] = [
                    {"role": m.get("role", "user"), "content": m.get("content", "")} for m in pair.messages
                ]
                for vote in pair.votes:
                    values = list(vote_values(vote)) + tail
                    if values[created_at] is not None:
                        values[created_at] = dt.datetime.fromisoformat(values[created_at]).astimezone(dt.UTC)
                    for column, value in zip(columns, values, strict=True):
                        column.append(value)
                    if len(columns[0]) >= ROW_GROUP:
                        flush()

            rows = write_per_vote(pairs, write_pair)
            if columns[0] or rows == 0:
                flush()
        return rows
