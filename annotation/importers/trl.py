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

Other keys (``score_chosen``, ``id``, ...) are ignored. Identical completions are skipped and
reported; a completion that is several messages, or a prompt that does not match the
conversation it is given with, refuses the file.
"""

from annotation.importers.base import (
    Format,
    ImportRow,
    ResponseIn,
    RowError,
    Skip,
    check_prompt,
    messages_from,
    register,
    type_name,
)


def _common_prefix_length(a, b) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _completion(messages: list[dict[str, str]], field_name: str) -> str:
    if len(messages) != 1:
        raise RowError(
            field_name, f"expected one assistant reply after the prompt, found {len(messages)} messages"
        )
    if messages[0]["role"] != "assistant":
        raise RowError(
            f"{field_name}[-1].role", f"the reply must be an assistant message, not {messages[0]['role']}"
        )
    return messages[0]["content"]


@register
class TRL(Format):
    name = "trl"
    label = "TRL preference (prompt / chosen / rejected)"
    help = "JSON Lines of {prompt?, chosen, rejected}: strings or message lists, prompt explicit or implicit."
    labelled = True

    def parse(self, record: dict) -> ImportRow | Skip:
        for key in ("chosen", "rejected"):
            if key not in record:
                raise RowError(key, "missing")
            if not isinstance(record[key], str | list):
                raise RowError(key, f"expected a string or a list of messages, got {type_name(record[key])}")
        chosen, rejected = record["chosen"], record["rejected"]
        if isinstance(chosen, str) != isinstance(rejected, str):
            raise RowError("rejected", "chosen and rejected must both be strings or both be message lists")
        if chosen == rejected:
            return Skip("chosen and rejected are the same")
        prompt = messages_from(record["prompt"], "prompt") if "prompt" in record else None
        if isinstance(chosen, str):
            prompt, chosen_text, rejected_text = self._standard(prompt, chosen, rejected)
        else:
            prompt, chosen_text, rejected_text = self._conversational(prompt, chosen, rejected)
        if chosen_text == rejected_text:
            return Skip("chosen and rejected are the same reply")
        return ImportRow(
            messages=prompt,
            responses=[ResponseIn(chosen_text), ResponseIn(rejected_text)],
            preferred=0,
            notes=[] if chosen_text and rejected_text else ["an empty reply kept"],
        )

    def _standard(self, prompt, chosen: str, rejected: str):
        if prompt is None:
            idx = _common_prefix_length(chosen, rejected)
            if idx == min(len(chosen), len(rejected)):
                raise RowError("prompt", "missing, and one completion is the start of the other")
            if idx > 0 and chosen[idx - 1] == " ":
                idx -= 1  # as trl.extract_prompt: the space belongs to the completion
            prompt = [{"role": "user", "content": chosen[:idx].strip()}]
            if not prompt[0]["content"]:
                raise RowError("prompt", "missing, and chosen and rejected share no leading prompt text")
            chosen, rejected = chosen[idx:], rejected[idx:]
        return check_prompt(prompt, "prompt"), chosen.strip(), rejected.strip()

    def _conversational(self, prompt, chosen: list, rejected: list):
        chosen = messages_from(chosen, "chosen")
        rejected = messages_from(rejected, "rejected")
        explicit = prompt is not None
        if explicit and chosen[: len(prompt)] == prompt and rejected[: len(prompt)] == prompt:
            chosen, rejected = chosen[len(prompt) :], rejected[len(prompt) :]  # prompt repeated inside
        elif not (explicit and len(chosen) == len(rejected) == 1):
            if explicit:
                raise RowError("prompt", "does not match the start of the chosen and rejected conversations")
            shared = _common_prefix_length(chosen, rejected)
            prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        prompt = check_prompt(prompt, "prompt" if explicit else "chosen")
        return prompt, _completion(chosen, "chosen"), _completion(rejected, "rejected")
