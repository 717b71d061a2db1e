"""Every raw vote: one JSON object per judgement (and per imported label, ``imported: true``),
with its comparison, prompt, both responses, their model versions, the annotator (pseudonymised
unless asked otherwise), choice, strength, rationale, time taken, which side was on the left, and
the comparison's aggregate ``label`` and ``agreement``. Ties and both-bad stay as they were.

Keys come in the fixed order of ``VOTE_COLUMNS`` then ``PAIR_COLUMNS`` (not sorted), so the
comparison half of each line is encoded once per comparison, not once per vote.
"""

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
)


@register
class VotesExporter(Exporter):
    name = "votes"
    extension = "jsonl"
    content_type = "application/x-ndjson"

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        rows = 0
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for pair in pairs:
            if not pair.votes:
                continue
            tail = dumps(dict(zip(PAIR_COLUMNS, pair_values(pair), strict=True)))[1:] + "\n"
            lines = [
                dumps(dict(zip(VOTE_COLUMNS, vote_values(vote), strict=True)))[:-1] + ", " + tail
                for vote in pair.votes
            ]
            out.write("".join(lines).encode())
            rows += len(lines)
        return rows
