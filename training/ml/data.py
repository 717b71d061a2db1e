"""Preference examples and the builders that read them from HH-RLHF and TRL rows.

An HH row holds two whole transcripts that share every turn but the last assistant reply:

>>> row = {"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!",
...        "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go away."}
>>> ex = examples_from_hh_row(row)[0]
>>> ex.prompt, ex.chosen, ex.rejected
([{'role': 'user', 'content': 'Hi'}], 'Hello!', 'Go away.')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"


class DataError(ValueError):
    """A row or file is not in a preference format we can read."""


Message = dict[str, str]


@dataclass(frozen=True)
class PreferenceExample:
    """One judged pair: `chosen` was preferred to `rejected` as a reply to `prompt` (or they tie)."""

    prompt: str | list[Message]
    chosen: str
    rejected: str
    margin: float | None = None  # from the annotator's strength; larger = clearer preference
    weight: float = 1.0  # multiplies this pair's loss
    annotator_id: str | None = None
    is_tie: bool = False
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.chosen, str) or not isinstance(self.rejected, str):
            raise DataError("chosen and rejected must be strings.")
        if isinstance(self.prompt, list):
            for turn in self.prompt:
                if not (isinstance(turn, dict) and isinstance(turn.get("role"), str) and "content" in turn):
                    raise DataError(f"Each prompt turn needs 'role' and 'content'; got {turn!r}.")
        elif not isinstance(self.prompt, str):
            raise DataError(f"prompt must be text or a list of turns, got {type(self.prompt).__name__}.")
        if not self.weight >= 0:
            raise DataError(f"weight must be non-negative, got {self.weight!r}.")


def prompt_key(prompt: str | list[Message]) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- HH


def parse_hh_transcript(text: str) -> list[Message]:
    """'\\n\\nHuman: a\\n\\nAssistant: b' -> [{'role': 'user', ...}, {'role': 'assistant', ...}]."""
    turns: list[Message] = []
    rest = text
    if not (rest.startswith(HUMAN) or rest.startswith(ASSISTANT)):
        # A few HH rows lack the leading blank lines; accept them rather than drop the pair.
        if rest.startswith("Human:"):
            rest = "\n\n" + rest
        else:
            raise DataError("An HH transcript must start with '\\n\\nHuman:'.")
    while rest:
        if rest.startswith(HUMAN):
            role, rest = "user", rest[len(HUMAN) :]
        elif rest.startswith(ASSISTANT):
            role, rest = "assistant", rest[len(ASSISTANT) :]
        else:  # pragma: no cover - the split below always leaves a marker at the front
            raise DataError("Malformed HH transcript.")
        nxt = [i for i in (rest.find(HUMAN), rest.find(ASSISTANT)) if i >= 0]
        end = min(nxt) if nxt else len(rest)
        content = rest[:end]
        turns.append({"role": role, "content": content[1:] if content.startswith(" ") else content})
        rest = rest[end:]
    return turns


def examples_from_hh_row(row: dict[str, Any]) -> list[PreferenceExample]:
    """One HH-RLHF row -> one example: the shared turns are the prompt, the last replies differ."""
    try:
        chosen, rejected = row["chosen"], row["rejected"]
    except KeyError as exc:
        raise DataError(f"HH row lacks {exc.args[0]!r}.") from None
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise DataError("HH chosen and rejected must be text transcripts.")
    # The prompt is the shared part up to the last "Assistant:" marker both transcripts contain. Cutting
    # at each transcript's own last marker would misread the few HH replies that contain a stray marker.
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind(ASSISTANT, 0, common)  # a marker lying wholly inside the shared prefix
    if cut < 0:
        raise DataError("HH transcripts must share their turns up to an '\\n\\nAssistant:' reply.")
    prompt = parse_hh_transcript(chosen[:cut]) if cut else []
    return [
        PreferenceExample(
            prompt=prompt,
            chosen=_strip_one_space(chosen[cut + len(ASSISTANT) :]),
            rejected=_strip_one_space(rejected[cut + len(ASSISTANT) :]),
            **_optional_fields(row),
        )
    ]


def _strip_one_space(text: str) -> str:
    return text[1:] if text.startswith(" ") else text


# --------------------------------------------------------------------------------------------- TRL


def examples_from_trl_row(row: dict[str, Any]) -> list[PreferenceExample]:
    """A TRL preference row, plain or conversational, with an explicit or implicit prompt.

    Explicit: {"prompt": ..., "chosen": ..., "rejected": ...}. Implicit: only chosen/rejected, whose
    longest common prefix (of characters, or of turns for conversations) is the prompt.
    """
    if "chosen" not in row or "rejected" not in row:
        raise DataError("A TRL preference row needs 'chosen' and 'rejected'.")
    chosen, rejected = row["chosen"], row["rejected"]
    prompt = row.get("prompt")
    if prompt is None:
        prompt, chosen, rejected = _split_implicit_prompt(chosen, rejected)
    if isinstance(chosen, list) or isinstance(rejected, list):
        chosen, rejected = _final_assistant_text(chosen), _final_assistant_text(rejected)
    return [PreferenceExample(prompt=prompt, chosen=chosen, rejected=rejected, **_optional_fields(row))]


def _split_implicit_prompt(chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    if isinstance(chosen, list) and isinstance(rejected, list):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        return chosen[:n], chosen[n:], rejected[n:]
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        # Same rule as TRL's extract_prompt: a space shared before the difference belongs to the reply.
        if n > 0 and chosen[n - 1] == " ":
            n -= 1
        return chosen[:n], chosen[n:], rejected[n:]
    raise DataError("chosen and rejected must both be text or both be lists of turns.")


def _final_assistant_text(turns: Any) -> str:
    if isinstance(turns, str):
        return turns
    if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], dict):
        raise DataError(
            "A conversational chosen/rejected must be exactly one assistant turn after the prompt."
        )
    if turns[0].get("role") != "assistant":
        raise DataError(f"The reply turn must have role 'assistant', got {turns[0].get('role')!r}.")
    return str(turns[0].get("content", ""))


def _optional_fields(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if row.get("margin") is not None:
        out["margin"] = float(row["margin"])
    if row.get("weight") is not None:
        out["weight"] = float(row["weight"])
    if row.get("annotator_id") is not None:
        out["annotator_id"] = str(row["annotator_id"])
    tie = row.get("is_tie", row.get("tie"))
    if tie is not None:
        out["is_tie"] = bool(tie)
    return out


# ------------------------------------------------------------------------------------------- files


def is_hh_row(row: dict[str, Any]) -> bool:
    chosen = row.get("chosen")
    return (
        "prompt" not in row
        and isinstance(chosen, str)
        and isinstance(row.get("rejected"), str)
        and ASSISTANT in chosen
        and (chosen.startswith(HUMAN) or chosen.startswith("Human:"))
    )


def example_from_row(row: dict[str, Any]) -> list[PreferenceExample]:
    if not isinstance(row, dict):
        raise DataError(f"Each line must be a JSON object, got {type(row).__name__}.")
    return examples_from_hh_row(row) if is_hh_row(row) else examples_from_trl_row(row)


def read_preference_jsonl(path: str | Path) -> list[PreferenceExample]:
    """Read an HH or TRL JSONL file (the format is detected per row); errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file.")
    examples: list[PreferenceExample] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                examples.extend(example_from_row(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg}).") from None
            except DataError as exc:
                raise DataError(f"{path}:{lineno}: {exc}") from None
    if not examples:
        raise DataError(f"{path} holds no preference pairs.")
    return examples


# ------------------------------------------------------------------------------------ ties & votes


def split_ties(
    examples: Iterable[PreferenceExample], *, tie_handling: str
) -> tuple[list[PreferenceExample], int]:
    """Apply the tie policy: 'exclude' drops ties (and says how many), 'smooth' keeps them."""
    if tie_handling not in ("exclude", "smooth"):
        raise DataError(f"tie_handling must be 'exclude' or 'smooth', got {tie_handling!r}.")
    kept, ties = [], 0
    for ex in examples:
        if ex.is_tie:
            ties += 1
            if tie_handling == "exclude":
                continue
        kept.append(ex)
    return kept, ties


def aggregate_votes(
    examples: Sequence[PreferenceExample],
    *,
    method: str = "majority",
    annotator_weights: dict[str, float] | None = None,
) -> list[PreferenceExample]:
    """Merge several annotators' votes on the same (prompt, pair) into one example.

    `majority` counts one vote per judgement; `weighted` counts each vote with its `weight` times the
    annotator's weight in `annotator_weights` (default 1). The side with more votes becomes
    `chosen`; an even split (or only tie votes) becomes a tie. The result's `weight` is the share of
    the (weighted) votes that agree with it, so contested pairs pull less on the loss, and its
    margin is the mean margin of the agreeing votes that carry one.

    >>> a = PreferenceExample("p", "x", "y", annotator_id="1")
    >>> b = PreferenceExample("p", "y", "x", annotator_id="2")
    >>> c = PreferenceExample("p", "x", "y", annotator_id="3")
    >>> [(e.chosen, round(e.weight, 2)) for e in aggregate_votes([a, b, c])]
    [('x', 0.67)]
    """
    if method not in ("majority", "weighted"):
        raise DataError(f"method must be 'majority' or 'weighted', got {method!r}.")
    annotator_weights = annotator_weights or {}
    groups: dict[tuple[str, str, str], list[PreferenceExample]] = {}
    for ex in examples:
        a, b = sorted((ex.chosen, ex.rejected))
        groups.setdefault((prompt_key(ex.prompt), a, b), []).append(ex)
    out = []
    for (_, a, b), votes in groups.items():
        score = {a: 0.0, b: 0.0}
        total = 0.0
        for v in votes:
            w = 1.0
            if method == "weighted":
                w = v.weight * annotator_weights.get(v.annotator_id or "", 1.0)
            total += w
            if v.is_tie:
                score[a] += w / 2
                score[b] += w / 2
            else:
                score[v.chosen] += w
        first = votes[0]
        if score[a] == score[b]:
            out.append(
                replace(first, chosen=a, rejected=b, is_tie=True, margin=None, weight=1.0, annotator_id=None)
            )
            continue
        winner, loser = (a, b) if score[a] > score[b] else (b, a)
        margins = [v.margin for v in votes if not v.is_tie and v.chosen == winner and v.margin is not None]
        out.append(
            replace(
                first,
                chosen=winner,
                rejected=loser,
                is_tie=False,
                margin=sum(margins) / len(margins) if margins else None,
                weight=score[winner] / total if total else 1.0,
                annotator_id=None,
                meta={**first.meta, "votes": len(votes)},
            )
        )
    return out
