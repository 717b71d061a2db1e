"""The Anthropic HH-RLHF layout: ``{"chosen": transcript, "rejected": transcript}`` per line,
each a full conversation ``"\\n\\nHuman: ...\\n\\nAssistant: <response>"``. The layout has no
place for ties or both-bad verdicts, so those pairs are always left out."""

import json
from collections.abc import Iterable
from typing import BinaryIO

from annotation.exporters.base import PAIR_LABELS, Exporter, Pair, WriteOptions, register, render_transcript


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
            context = render_transcript(pair.messages, speakers=True)
            chosen, rejected = pair.chosen_rejected
            row = {
                "chosen": f"{context}\n\nAssistant: {chosen}",
                "rejected": f"{context}\n\nAssistant: {rejected}",
            }
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
            rows += 1
        return rows
