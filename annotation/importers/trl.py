"""TRL preference data: ``prompt`` (optional), ``chosen``, ``rejected``.

The four shapes TRL's ``DPOTrainer``/``RewardTrainer`` accept:

- standard, explicit prompt: ``{"prompt": "2+2?", "chosen": "4", "rejected": "5"}``
- standard, implicit prompt: ``{"chosen": "2+2? 4", "rejected": "2+2? 5"}``: the prompt is the
  longest common prefix of the two strings, split as ``trl.extract_prompt`` does (a space before
  the point of difference goes to the completions)
- conversational, explicit: ``prompt`` is a message list, ``chosen``/``rejected`` are each one
  assistant message (``[{"role": "assistant", "content": "4"}]``)
- conversational, implicit: ``chosen``/``rejected`` are whole conversations; the shared leading
  messages are the prompt and each must then end in exactly one assistant message.

A standard prompt in the HH layout (``"\\n\\nHuman: Hi\\n\\nAssistant:"``, as our plain ``trl``
export writes) is read as that conversation, and implicit HH transcripts as an HH row: the rules
are ``alignweb.conversations``', shared with the ML core. A standard prompt with no turns becomes
one user turn, and it and the completions lose the spaces that joined them.

Other keys (``score_chosen``, ``id``, ...) are ignored. Identical completions are skipped and
reported; a completion that is several messages, or a prompt that does not match the
conversation it is given with, refuses the file.
"""

from alignweb.conversations import DifferentConversations, trl_preference
from annotation.importers.base import Format, ImportRow, ResponseIn, Skip, check_prompt, register


@register
class TRL(Format):
    name = "trl"
    label = "TRL preference (prompt / chosen / rejected)"
    help = "JSON Lines of {prompt?, chosen, rejected}: strings or message lists, prompt explicit or implicit."
    labelled = True

    def parse(self, record: dict) -> ImportRow | Skip:
        chosen = record.get("chosen")
        if isinstance(chosen, str | list) and chosen == record.get("rejected"):
            return Skip("chosen and rejected are the same")
        try:
            pair = trl_preference(record)
        except DifferentConversations as error:
            return Skip(error.message)
        prompt, chosen, rejected = pair.prompt, pair.chosen, pair.rejected
        if isinstance(prompt, str):
            prompt = check_prompt([{"role": "user", "content": prompt.strip()}], "prompt")
            chosen, rejected = chosen.strip(), rejected.strip()
        if chosen == rejected:
            return Skip("chosen and rejected are the same reply")
        return ImportRow(
            messages=prompt,
            responses=[ResponseIn(chosen), ResponseIn(rejected)],
            preferred=0,
            notes=[] if chosen and rejected else ["an empty reply kept"],
        )
