"""How a preference row's conversation is read and written, for the importers and the ML core alike.

Two layouts hold the same thing, a prompt (a list of ``{"role", "content"}`` messages) and two
replies to it:

- Anthropic HH-RLHF: two transcripts ``"\\n\\nHuman: ...\\n\\nAssistant: <reply>"`` that share
  every turn but the final reply;
- TRL: ``prompt`` (optional), ``chosen``, ``rejected``, either plain text or message lists.

The rules, written once here (the importers and ``training.ml.data`` call them; this module
imports the standard library only, so the ML core can use it without Django):

- A turn's content is kept as written. The one space after ``Human:`` or ``Assistant:`` belongs to
  the marker; nothing else is stripped and no turns are merged, so rendering a parsed transcript
  gives back its bytes.
- A marker that repeats the speaker of the turn it is in (``"...\\n\\nAssistant: more"`` inside an
  assistant turn, a stray of the HH data) is text of that turn, not a new turn: turns alternate.
- The final replies are what follows the last ``\\n\\nAssistant:`` the two transcripts share, so a
  reply that holds markers of its own (``"No.  Human: why?\\n\\nAssistant: because"``) stays whole.
- A plain TRL prompt in the HH layout (``"\\n\\nHuman: Hi\\n\\nAssistant:"``) is that conversation;
  its completions start with the space that joins them to the cue (TRL's ``extract_prompt``
  rule), so ``prompt + chosen`` is the HH transcript.

>>> hh_preference("\\n\\nHuman: Hi\\n\\nAssistant: Hello!", "\\n\\nHuman: Hi\\n\\nAssistant: Go away.")
Preference(prompt=[{'role': 'user', 'content': 'Hi'}], chosen='Hello!', rejected='Go away.', \
repeated_markers=False)
>>> trl_plain_row([{"role": "user", "content": "Hi"}], "Hello!", "Go away.")
{'prompt': '\\n\\nHuman: Hi\\n\\nAssistant:', 'chosen': ' Hello!', 'rejected': ' Go away.'}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Message = dict[str, str]

ROLES = ("system", "user", "assistant")
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
_SPEAKER = {"system": "System", "user": "Human", "assistant": "Assistant"}
_ROLE = {speaker: role for role, speaker in _SPEAKER.items()}
_MARKER = re.compile(r"\n\n(Human|Assistant):")
_SYSTEM = "\n\nSystem:"  # only as the first turn: HH has none, our exports write one there


class ConversationError(ValueError):
    """A row that is not a conversation in the layout it claims. ``field`` is a path into the
    row, e.g. ``chosen[1].role``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DifferentConversations(ConversationError):
    """Well formed, but chosen and rejected do not answer the same prompt: nothing to compare."""


@dataclass(frozen=True)
class Preference:
    """A prompt and two replies. ``prompt`` is text only for a plain TRL prompt with no turns."""

    prompt: list[Message] | str
    chosen: str
    rejected: str
    repeated_markers: bool = False  # a turn holds a marker of its own speaker (kept as text)


# --- HH transcripts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    role: str
    marker_start: int  # offset of the turn's "\n\n<Speaker>:" in the transcript
    content_start: int  # offset just after the marker


def _normalise_start(text: str) -> str:
    # A transcript without its leading blank line, as a few HH rows are, reads as if it had one.
    stripped = text.lstrip()
    if stripped.startswith(("Human:", "Assistant:", "System:")):
        return "\n\n" + stripped
    return text


def _turns(text: str, field: str) -> tuple[list[_Turn], bool]:
    """The turn boundaries of a transcript, and whether a marker repeated its turn's speaker."""
    turns: list[_Turn] = []
    position = 0
    if text.startswith(_SYSTEM):
        turns.append(_Turn("system", 0, len(_SYSTEM)))
        position = len(_SYSTEM)
    repeated = False
    for match in _MARKER.finditer(text, position):
        role = _ROLE[match.group(1)]
        if not turns:
            if text[: match.start()].strip():
                raise ConversationError(field, "text before the first '\\n\\nHuman:' turn")
        elif turns[-1].role == role:
            repeated = True
            continue
        turns.append(_Turn(role, match.start(), match.end()))
    if not turns:
        if text.strip():
            raise ConversationError(field, "text before the first '\\n\\nHuman:' turn")
        raise ConversationError(field, "no '\\n\\nHuman:' or '\\n\\nAssistant:' turns")
    first_spoken = turns[1] if turns[0].role == "system" and len(turns) > 1 else turns[0]
    if first_spoken.role != "user":
        raise ConversationError(field, "the transcript must start with a Human turn")
    return turns, repeated


def _content(text: str) -> str:
    return text[1:] if text.startswith(" ") else text


def _messages(text: str, turns: list[_Turn], end: int) -> list[Message]:
    """The turns that start before ``end``, each running to the next one (the last to ``end``)."""
    kept = [turn for turn in turns if turn.marker_start < end]
    stops = [turn.marker_start for turn in kept[1:]] + [end]
    return [
        {"role": turn.role, "content": _content(text[turn.content_start : stop])}
        for turn, stop in zip(kept, stops, strict=True)
    ]


def parse_transcript(text: str, field: str = "transcript") -> list[Message]:
    """The messages of one HH transcript, by the rules above.

    >>> parse_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello.\\n\\nAssistant:  More.")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello.\\n\\nAssistant:  More.'}]
    """
    text = _normalise_start(text)
    turns, _ = _turns(text, field)
    return _messages(text, turns, len(text))


def is_hh_transcript(text: object) -> bool:
    """Whether ``text`` looks like an HH transcript (it may still be malformed)."""
    if not isinstance(text, str):
        return False
    text = _normalise_start(text)
    return text.startswith((HUMAN, _SYSTEM)) and ASSISTANT in text


def render_transcript(messages: list[Message]) -> str:
    """The HH text of a conversation: the inverse of :func:`parse_transcript`."""
    return "".join(f"\n\n{_SPEAKER[m['role']]}: {m['content']}" for m in messages)


def hh_transcript(messages: list[Message], reply: str) -> str:
    """One side of an HH row: the conversation, then the assistant's reply."""
    return render_transcript([*messages, {"role": "assistant", "content": reply}])


def hh_preference(chosen: str, rejected: str) -> Preference:
    """Split an HH row into the prompt the transcripts share and their two final replies."""
    chosen, rejected = _normalise_start(chosen), _normalise_start(rejected)
    chosen_turns, chosen_repeats = _turns(chosen, "chosen")
    rejected_turns, rejected_repeats = _turns(rejected, "rejected")
    for field, turns in (("chosen", chosen_turns), ("rejected", rejected_turns)):
        if not any(turn.role == "assistant" for turn in turns):
            raise ConversationError(field, "the transcript must end with an Assistant turn")
    shared = _common_prefix_length(chosen, rejected)
    # Boundaries are read left to right, so one that lies wholly in the shared text is in both.
    cuts = [t for t in chosen_turns if t.role == "assistant" and t.content_start <= shared]
    if not cuts:
        raise DifferentConversations(
            "rejected",
            "chosen and rejected are different conversations: they share no turns before a final reply",
        )
    cut = cuts[-1]
    prompt = check_prompt(_messages(chosen, chosen_turns, cut.marker_start), "chosen")
    repeated = chosen_repeats or rejected_repeats
    return Preference(
        prompt, _content(chosen[cut.content_start :]), _content(rejected[cut.content_start :]), repeated
    )


# --- TRL rows ------------------------------------------------------------------------------------


def type_name(value: object) -> str:
    return {
        str: "a string",
        list: "a list",
        dict: "an object",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def messages_from(value: object, field: str) -> list[Message]:
    """A list of ``{"role", "content"}`` messages, checked and copied (other keys are dropped)."""
    if not isinstance(value, list):
        raise ConversationError(field, f"expected a list of messages, got {type_name(value)}")
    messages = []
    for index, message in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise ConversationError(
                where, f"expected an object with role and content, got {type_name(message)}"
            )
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ConversationError(f"{where}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise ConversationError(f"{where}.content", f"expected a string, got {type_name(content)}")
        messages.append({"role": role, "content": content})
    return messages


def _hh_prompt(text: str) -> tuple[list[Message], str] | None:
    """A plain prompt in the HH layout: its messages and the spaces after its final cue."""
    body = text.rstrip(" ")
    if not (is_hh_transcript(body) and body.endswith(ASSISTANT)):
        return None
    body = _normalise_start(body)
    try:
        turns, _ = _turns(body, "prompt")
    except ConversationError:
        return None
    if turns[-1].role != "assistant" or turns[-1].content_start != len(body):
        return None  # the cue is text inside an assistant turn: a prefilled reply, not a prompt
    return _messages(body, turns, turns[-1].marker_start), text[len(text.rstrip(" ")) :]


def trl_preference(record: dict[str, Any]) -> Preference:
    """A TRL row (plain or conversational, prompt explicit or implicit), or an HH row.

    Plain prompts with no turns stay text, with the completions as written (the TRL convention:
    ``prompt + chosen`` is the whole text); everything else is a conversation.
    """
    for key in ("chosen", "rejected"):
        if key not in record:
            raise ConversationError(key, "missing")
        if not isinstance(record[key], str | list):
            raise ConversationError(
                key, f"expected a string or a list of messages, got {type_name(record[key])}"
            )
    chosen, rejected = record["chosen"], record["rejected"]
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise ConversationError(
            "rejected", "chosen and rejected must both be strings or both be message lists"
        )
    prompt = record.get("prompt")
    if prompt is not None and not isinstance(prompt, str | list):
        raise ConversationError("prompt", f"expected a string or a list of messages, got {type_name(prompt)}")
    if isinstance(chosen, str):
        if prompt is None:
            if is_hh_transcript(chosen) and is_hh_transcript(rejected):
                return hh_preference(chosen, rejected)
            return _implicit_plain(chosen, rejected)
        if isinstance(prompt, list):
            return Preference(check_prompt(messages_from(prompt, "prompt"), "prompt"), chosen, rejected)
        hh = _hh_prompt(prompt)
        if hh is None:
            return Preference(prompt, chosen, rejected)
        messages, spaces = hh
        return Preference(
            check_prompt(messages, "prompt"), _content(spaces + chosen), _content(spaces + rejected)
        )
    return _conversational(prompt, messages_from(chosen, "chosen"), messages_from(rejected, "rejected"))


def _common_prefix_length(a, b) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _implicit_plain(chosen: str, rejected: str) -> Preference:
    cut = _common_prefix_length(chosen, rejected)
    if cut == min(len(chosen), len(rejected)):
        raise ConversationError("prompt", "missing, and one completion is the start of the other")
    if cut > 0 and chosen[cut - 1] == " ":
        cut -= 1  # as trl.extract_prompt: the space belongs to the completion
    if not chosen[:cut].strip():
        raise ConversationError("prompt", "missing, and chosen and rejected share no leading prompt text")
    return Preference(chosen[:cut], chosen[cut:], rejected[cut:])


def _conversational(prompt: str | list | None, chosen: list[Message], rejected: list[Message]) -> Preference:
    if isinstance(prompt, str):
        hh = _hh_prompt(prompt)
        prompt = hh[0] if hh else [{"role": "user", "content": prompt}]
    elif isinstance(prompt, list):
        prompt = messages_from(prompt, "prompt")
    explicit = prompt is not None
    if explicit and chosen[: len(prompt)] == prompt and rejected[: len(prompt)] == prompt:
        chosen, rejected = chosen[len(prompt) :], rejected[len(prompt) :]  # the prompt repeated inside
    elif not (explicit and len(chosen) == len(rejected) == 1):
        if explicit:
            raise ConversationError(
                "prompt", "does not match the start of the chosen and rejected conversations"
            )
        shared = _common_prefix_length(chosen, rejected)
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    prompt = check_prompt(prompt, "prompt" if explicit else "chosen")
    return Preference(prompt, _completion(chosen, "chosen"), _completion(rejected, "rejected"))


def _completion(messages: list[Message], field: str) -> str:
    if len(messages) != 1:
        raise ConversationError(
            field, f"expected one assistant reply after the prompt, found {len(messages)} messages"
        )
    if messages[0]["role"] != "assistant":
        raise ConversationError(
            f"{field}[-1].role", f"the reply must be an assistant message, not {messages[0]['role']}"
        )
    return messages[0]["content"]


def check_prompt(messages: list[Message], field: str) -> list[Message]:
    """A prompt ends with a non-empty user turn: that is the turn the replies answer."""
    if not messages:
        raise ConversationError(field, "the prompt is empty")
    if messages[-1]["role"] != "user":
        raise ConversationError(field, f"the prompt must end with a user turn, not {messages[-1]['role']}")
    if not messages[-1]["content"].strip():
        raise ConversationError(field, "the last user turn is empty")
    return messages


# --- Writing TRL rows ----------------------------------------------------------------------------


def trl_conversational_row(messages: list[Message], chosen: str, rejected: str) -> dict[str, Any]:
    """The layout TRL applies chat templates to: a message list and one assistant turn per side."""
    return {
        "prompt": [{"role": m["role"], "content": m["content"]} for m in messages],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def trl_plain_row(messages: list[Message], chosen: str, rejected: str) -> dict[str, Any]:
    """Text in the HH layout: the prompt ends with the bare cue, each completion with its space."""
    return {
        "prompt": render_transcript(messages) + ASSISTANT,
        "chosen": f" {chosen}",
        "rejected": f" {rejected}",
    }
