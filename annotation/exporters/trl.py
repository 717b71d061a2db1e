"""TRL preference data: one JSON object per line with ``prompt``, ``chosen`` and ``rejected``.

Conversational (the default): ``prompt`` is the list of ``{"role", "content"}`` turns and
``chosen``/``rejected`` are one assistant turn each, the layout TRL applies chat templates to.
Plain (``conversational=False``): text in the HH layout, ``prompt`` the turns ending with the
bare ``"\\n\\nAssistant:"`` cue and each completion starting with the space that follows it, so
``prompt + chosen`` is the HH transcript. Both read back (by our importer and by the ML core) as
the same conversation: the layouts are ``alignweb.conversations``'.

Ties and both-bad verdicts have no chosen side: they are left out, or with ``ties="label"`` every
row carries ``label`` (``preferred``, ``tie`` or ``both_bad``) and ties keep A then B in
canonical order, so a trainer can filter them.
"""

from collections.abc import Iterable
from typing import BinaryIO

from alignweb.conversations import trl_conversational_row, trl_plain_row
from annotation.exporters.base import PAIR_LABELS, Exporter, Pair, WriteOptions, register, write_json_lines


def trl_row(pair: Pair, options: WriteOptions) -> dict | None:
    if pair.label is None:
        return None
    if pair.label not in PAIR_LABELS and options.ties != "label":
        return None
    layout = trl_conversational_row if options.conversational else trl_plain_row
    row = layout(pair.messages, *pair.chosen_rejected)
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
        return write_json_lines((trl_row(pair, options) for pair in pairs), out)
