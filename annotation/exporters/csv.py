"""Every raw vote as CSV, the same columns as ``votes`` (the prompt as JSON text).

Spreadsheets run a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and some read tab and
carriage return the same way) as a formula, so such text cells get a leading apostrophe (the
OWASP advice against CSV injection). Numbers are written as numbers and never escaped.
"""

import csv
import io
import json
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

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@register
class CsvExporter(Exporter):
    name = "csv"
    extension = "csv"
    content_type = "text/csv"

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(VOTE_COLUMNS + PAIR_COLUMNS)

            def write_pair(pair: Pair) -> None:
                tail = [cell(value) for value in pair_values(pair)]
                writer.writerows([cell(value) for value in vote_values(vote)] + tail for vote in pair.votes)

            rows = write_per_vote(pairs, write_pair)
            text.flush()
        finally:
            text.detach()  # the caller owns ``out`` and closes it
        return rows
