"""TRL preference data: one JSON object per line with ``prompt``, ``chosen`` and ``rejected``.

Plain (default): ``prompt`` is text (a single user turn as it is; a longer conversation in the
HH layout ending with ``"\\n\\nAssistant: "``) and ``chosen``/``rejected`` are the response texts.
Conversational (``conversational=True``): ``prompt`` is the list of ``{"role", "content"}`` turns
and ``chosen``/``rejected`` are one assistant turn each, the layout TRL applies chat templates to.

Ties and both-bad verdicts have no chosen side: they are left out, or with ``ties="label"`` every
row carries ``label`` (``preferred``, ``tie`` or ``both_bad``) and ties keep A then B in
canonical order, so a trainer can filter them.
"""

import json
from collections.abc import Iterable
from typing import BinaryIO

from annotation.exporters.base import PAIR_LABELS, Exporter, Pair, WriteOptions, register, render_transcript


def trl_row(pair: Pair, options: WriteOptions) -> dict | None:
    if pair.label is None:
        return None
    if pair.label not in PAIR_LABELS and options.ties != "label":
        return None
    chosen, rejected = pair.chosen_rejected
    if options.conversational:
        row = {
            "prompt": [
                {"role": m.get("role", "user"), "content": m.get("content", "")} for m in pair.messages
            ],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }
    else:
        prompt = render_transcript(pair.messages)
        if prompt.startswith("\n\n"):
            prompt += "\n\nAssistant: "
        row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    if options.ties == "label":
        row["label"] = "preferred" if pair.label in PAIR_LABELS else pair.label
    return row


@register
class TrlExporter(Exporter):
    name = "trl"
    extension = "jsonl"
    content_type = "application/x-ndjson"
    pair_level = True

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        rows = 0
        for pair in pairs:
            row = trl_row(pair, options)
            if row is None:
                continue
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
            rows += 1
        return rows
