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
    Exporter,
    Pair,
    WriteOptions,
    pair_values,
    register,
    vote_values,
    write_per_vote,
)

_string = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring  # ensure_ascii=False


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _float(value: float | None) -> str:
    return "null" if value is None else float.__repr__(value)  # what the encoder writes for a finite float


def _number(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def vote_json_head(vote) -> str:
    """The vote half of a line: exactly ``json.dumps(dict(zip(VOTE_COLUMNS, vote_values(vote))),
    ensure_ascii=False)`` without its closing brace, written out by hand because it runs once per
    vote and the generic encoder is the slowest step of a large export."""
    (judgement_id, imported, source, annotator, choice, shown, strength, rationale, duration_ms, left, at) = (
        vote_values(vote)
    )
    return (
        f'{{"judgement_id": {_number(judgement_id)}, "imported": {"true" if imported else "false"}, '
        f'"source": {_string(source)}, "annotator": {_text(annotator)}, "choice": {_string(choice)}, '
        f'"choice_shown": {_text(shown)}, "strength": {_number(strength)}, '
        f'"rationale": {_string(rationale)}, '
        f'"duration_ms": {_number(duration_ms)}, "left": {_text(left)}, "created_at": {_text(at)}'
    )


_encode = json.JSONEncoder(ensure_ascii=False).encode


def pair_json_tail(pair: Pair) -> str:
    """The comparison half of a line, from the comma after the vote half to the newline: exactly
    what ``json.dumps(dict(zip(PAIR_COLUMNS, pair_values(pair))), ensure_ascii=False)`` writes
    after its opening brace, by hand for the same reason as ``vote_json_head``."""
    (comparison_id, prompt_id, is_gold, gold_choice, label, agreement, model_a, model_b, prompt, a, b) = (
        pair_values(pair)
    )
    return (
        f', "comparison_id": {_number(comparison_id)}, "prompt_id": {_number(prompt_id)}, '
        f'"is_gold": {"true" if is_gold else "false"}, "gold_choice": {_text(gold_choice)}, '
        f'"label": {_text(label)}, "agreement": {_float(agreement)}, '
        f'"model_a": {_text(model_a)}, "model_b": {_text(model_b)}, "prompt": {_encode(prompt)}, '
        f'"response_a": {_text(a)}, "response_b": {_text(b)}}}\n'
    )


# The hand-written halves above must follow PAIR_COLUMNS / VOTE_COLUMNS key for key:
# tests/annotation/test_export_formats.py compares them with the generic encoder.


@register
class VotesExporter(Exporter):
    name = "votes"
    extension = "jsonl"
    content_type = "application/x-ndjson"

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        def write_pair(pair: Pair) -> None:
            tail = pair_json_tail(pair)
            out.write("".join([vote_json_head(vote) + tail for vote in pair.votes]).encode())

        return write_per_vote(pairs, write_pair)
