"""Anthropic HH-RLHF: ``{"chosen": transcript, "rejected": transcript}``.

A transcript is ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. Both transcripts share a conversation
and differ in the final assistant reply; the shared turns become the prompt and the two replies
the responses, with "chosen" kept as the prior label. How a transcript is read is written once,
in ``alignweb.conversations`` (the ML core reads HH files with the same rules), so an ``hh``
export of an import gives back the file's bytes.

Decisions on the quirks of the real data (``hh-harmless-dev.jsonl`` has each of the first two):
- A turn that repeats its own speaker's marker (a reply split by a stray ``\\n\\nAssistant:``)
  keeps the marker as text: turns alternate, and nothing is lost. Nine rows of the dev set have
  one; they import, and are counted in the report's notes.
- An empty reply is kept: preferring silence to a harmful answer is a real judgement. Noted.
- Identical replies, or transcripts that share no turns up to a final reply, cannot be compared:
  the row is skipped and counted, with its line number, in the report.
- A transcript with text before its first turn, no Human turn first, or no Assistant turn is
  malformed: the file is refused.

>>> HH().parse({"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!",
...             "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go away."})
ImportRow(messages=[{'role': 'user', 'content': 'Hi'}], responses=[ResponseIn(text='Hello!', source='', \
generation_params={}), ResponseIn(text='Go away.', source='', generation_params={})], preferred=0, notes=[])
"""

from alignweb.conversations import DifferentConversations, hh_preference
from annotation.importers.base import Format, ImportRow, ResponseIn, Skip, register, require

REPEATED_MARKER = "a turn holds its own speaker's marker, kept as text"
EMPTY_REPLY = "an empty reply kept"


@register
class HH(Format):
    name = "hh"
    label = "Anthropic HH-RLHF"
    help = 'JSON Lines of {"chosen", "rejected"}: transcripts of "\\n\\nHuman:" and "\\n\\nAssistant:" turns.'
    labelled = True

    def parse(self, record: dict) -> ImportRow | Skip:
        chosen = require(record, "chosen", (str,), "a string")
        rejected = require(record, "rejected", (str,), "a string")
        try:
            pair = hh_preference(chosen, rejected)
        except DifferentConversations as error:
            return Skip(error.message)
        if pair.chosen == pair.rejected:
            return Skip("chosen and rejected end with the same reply")
        notes = [REPEATED_MARKER] if pair.repeated_markers else []
        if not pair.chosen or not pair.rejected:
            notes.append(EMPTY_REPLY)
        return ImportRow(
            messages=pair.prompt,
            responses=[ResponseIn(pair.chosen), ResponseIn(pair.rejected)],
            preferred=0,
            notes=notes,
        )
