"""The Anthropic HH-RLHF layout: ``{"chosen": transcript, "rejected": transcript}`` per line,
each a full conversation ``"\\n\\nHuman: ...\\n\\nAssistant: <response>"``, written by the same
rules the importer reads with (``alignweb.conversations``), so an import exports back as it came.
The layout has no place for ties or both-bad verdicts, so those pairs are always left out."""

import json
from collections.abc import Iterable
from typing import BinaryIO

from alignweb.conversations import hh_transcript
from annotation.exporters.base import PAIR_LABELS, Exporter, Pair, WriteOptions, register


@register
class HhExporter(Exporter):
    name = "hh"
    extension = "jsonl"
    content_type = "application/x-ndjson"
    pair_level = True

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        rows = 0
        for pair in pairs:
            if pair.label not in PAIR_LABELS:
                continue
            chosen, rejected = pair.chosen_rejected
            row = {
                "chosen": hh_transcript(pair.messages, chosen),
                "rejected": hh_transcript(pair.messages, rejected),
            }
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
            rows += 1
        return rows
