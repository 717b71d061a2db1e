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

from alignweb import conversations


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


# ----------------------------------------------------------------------------------- HH and TRL
# How a row's conversation is read is one rule, shared with the importers (alignweb.conversations is
# standard library only, so the ML core still stands alone).


def examples_from_hh_row(row: dict[str, Any]) -> list[PreferenceExample]:
    """One HH-RLHF row -> one example: the shared turns are the prompt, the last replies differ."""
    for key in ("chosen", "rejected"):
        if key not in row:
            raise DataError(f"HH row lacks {key!r}.")
    if not isinstance(row["chosen"], str) or not isinstance(row["rejected"], str):
        raise DataError("HH chosen and rejected must be text transcripts.")
    return [_example(conversations.hh_preference, row["chosen"], row["rejected"], row=row)]


def examples_from_trl_row(row: dict[str, Any]) -> list[PreferenceExample]:
    """A TRL preference row, plain or conversational, with an explicit or implicit prompt.

    Explicit: {"prompt": ..., "chosen": ..., "rejected": ...}. Implicit: only chosen/rejected, whose
    longest common prefix (of characters, or of turns for conversations) is the prompt. A plain
    prompt in the HH layout ("\\n\\nHuman: ...\\n\\nAssistant:") is read as that conversation, so it
    goes through the chat template like any other.
    """
    return [_example(conversations.trl_preference, row, row=row)]


def _example(parse, *args, row: dict[str, Any]) -> PreferenceExample:
    try:
        pair = parse(*args)
    except conversations.ConversationError as exc:
        raise DataError(str(exc)) from None
    return PreferenceExample(
        prompt=pair.prompt, chosen=pair.chosen, rejected=pair.rejected, **_optional_fields(row)
    )


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


def example_from_row(row: dict[str, Any]) -> list[PreferenceExample]:
    """An HH or TRL row: HH rows are TRL rows whose implicit prompt is a transcript."""
    if not isinstance(row, dict):
        raise DataError(f"Each line must be a JSON object, got {type(row).__name__}.")
    return examples_from_trl_row(row)


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
