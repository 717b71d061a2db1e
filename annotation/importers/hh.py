"""Anthropic HH-RLHF: ``{"chosen": transcript, "rejected": transcript}``.

A transcript is ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. Both transcripts share a conversation
and differ in the final assistant reply; the shared turns become the prompt and the two replies
the responses, with "chosen" kept as the prior label.

Decisions on the quirks of the real data (``hh-harmless-dev.jsonl`` has each of the first two):
- Consecutive turns of one speaker (a reply split by a stray ``\\n\\nAssistant:``) are merged into
  one turn, joined by a blank line. Nine rows of the dev set have them; in five, one transcript
  is split and the other not, so without merging the two would disagree before the final reply.
  Merged rows import, and are counted in the report's notes.
- An empty reply is kept: preferring silence to a harmful answer is a real judgement. Noted.
- Identical replies, or transcripts that disagree before the final reply even after merging,
  cannot be compared: the row is skipped and counted, with its line number, in the report.
- A transcript with text before its first turn, no Human turn, or not ending with an Assistant
  turn is malformed: the file is refused.

>>> HH().parse({"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!",
...             "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go away."})
ImportRow(messages=[{'role': 'user', 'content': 'Hi'}], responses=[ResponseIn(text='Hello!', source='', \
generation_params={}), ResponseIn(text='Go away.', source='', generation_params={})], preferred=0, notes=[])
"""

import re

from annotation.importers.base import (
    Format,
    ImportRow,
    ResponseIn,
    RowError,
    Skip,
    check_prompt,
    register,
    require,
)

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_transcript(text: str, field_name: str) -> tuple[list[dict[str, str]], bool]:
    """The turns of an HH transcript, and whether consecutive same-speaker turns were merged."""
    stripped = text.lstrip()
    if stripped.startswith(("Human:", "Assistant:")):
        text = "\n\n" + stripped  # tolerate a transcript that starts without the blank line
    parts = _TURN.split(text)
    if parts[0].strip():
        raise RowError(field_name, "text before the first '\\n\\nHuman:' turn")
    turns: list[dict[str, str]] = []
    merged = False
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        role, content = _ROLES[speaker], content.strip()
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = f"{turns[-1]['content']}\n\n{content}".strip()
            merged = True
        else:
            turns.append({"role": role, "content": content})
    if not turns:
        raise RowError(field_name, "no '\\n\\nHuman:' or '\\n\\nAssistant:' turns")
    if turns[0]["role"] != "user":
        raise RowError(field_name, "the transcript must start with a Human turn")
    if turns[-1]["role"] != "assistant" or len(turns) < 2:
        raise RowError(field_name, "the transcript must end with an Assistant turn")
    return turns, merged


@register
class HH(Format):
    name = "hh"
    label = "Anthropic HH-RLHF"
    help = 'JSON Lines of {"chosen", "rejected"}: transcripts of "\\n\\nHuman:" and "\\n\\nAssistant:" turns.'
    labelled = True

    def parse(self, record: dict) -> ImportRow | Skip:
        chosen, merged_chosen = parse_transcript(require(record, "chosen", (str,), "a string"), "chosen")
        rejected, merged_rejected = parse_transcript(
            require(record, "rejected", (str,), "a string"), "rejected"
        )
        if chosen[:-1] != rejected[:-1]:
            return Skip("chosen and rejected are different conversations before the final reply")
        chosen_reply, rejected_reply = chosen[-1]["content"], rejected[-1]["content"]
        if chosen_reply == rejected_reply:
            return Skip("chosen and rejected end with the same reply")
        notes = []
        if merged_chosen or merged_rejected:
            notes.append("consecutive turns of one speaker merged")
        if not chosen_reply or not rejected_reply:
            notes.append("an empty reply kept")
        return ImportRow(
            messages=check_prompt(chosen[:-1], "chosen"),
            responses=[ResponseIn(chosen_reply), ResponseIn(rejected_reply)],
            preferred=0,
            notes=notes,
        )
