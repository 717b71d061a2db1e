"""The Anthropic HH-RLHF layout: ``{"chosen": transcript, "rejected": transcript}`` per line,
each a full conversation ``"\\n\\nHuman: ...\\n\\nAssistant: <response>"``, written by the same
rules the importer reads with (``alignweb.conversations``), so an import exports back as it came.
The layout has no place for ties or both-bad verdicts, so those pairs are always left out."""

from collections.abc import Iterable
from typing import BinaryIO

from alignweb.conversations import hh_transcript
from annotation.exporters.base import PAIR_LABELS, Exporter, Pair, WriteOptions, register, write_json_lines


@register
class HhExporter(Exporter):
    name = "hh"
    extension = "jsonl"
    content_type = "application/x-ndjson"
    pair_level = True

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        return write_json_lines((hh_row(pair) for pair in pairs), out)


def hh_row(pair: Pair) -> dict | None:
    """The pair's two transcripts; None for a tie or both-bad, which the layout cannot hold."""
    if pair.label not in PAIR_LABELS:
        return None
    chosen, rejected = pair.chosen_rejected
    return {
        "chosen": hh_transcript(pair.messages, chosen),
        "rejected": hh_transcript(pair.messages, rejected),
    }
