"""The interface every export format implements, and the registry that finds them by name.

An exporter receives :class:`Pair` records (one comparison, its two responses, its votes and
their aggregated label) already filtered and ordered by comparison id, and writes bytes to a
binary file object. Vote-level formats (``votes``, ``csv``, ``parquet``) write one row per
:class:`Vote`; pair-level formats (``trl``, ``hh``) write one row per labelled pair.

Adding a format is adding a module in this package that subclasses :class:`Exporter` and
decorates it with :func:`register`.
"""

import datetime as dt
import importlib
import json
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar

from annotation.sides import SIDES, chosen_rejected, shown_choice

PAIR_LABELS = SIDES


@dataclass(slots=True)
class Vote:
    """One judgement, or the label that came with an import (``imported=True``, no annotator)."""

    judgement_id: int | None
    annotator: str | None  # username or HMAC pseudonym, as the export asked
    choice: str
    strength: int | None
    rationale: str
    duration_ms: int | None
    left: str | None  # canonical side shown on the left: "a" or "b"
    created_at: str | dt.datetime | None  # ISO 8601 text in UTC, as the database formats it
    imported: bool = False
    source: str = ""


@dataclass(slots=True)
class Pair:
    """One comparison of two responses, with its votes and aggregate."""

    comparison_id: int
    prompt_id: int
    messages: list[dict]
    response_a: str
    response_b: str
    model_a: str  # model version name, or the import source name
    model_b: str
    is_gold: bool
    gold_choice: str
    votes: list[Vote] = field(default_factory=list)
    label: str | None = None  # the aggregated choice; None when the votes split
    agreement: float | None = None  # share of votes equal to the label

    @property
    def chosen_rejected(self) -> tuple[str, str]:
        """(chosen, rejected) for an a/b label; for other labels A then B, in canonical order."""
        return chosen_rejected(self.label, self.response_a, self.response_b)


@dataclass(frozen=True)
class WriteOptions:
    """What the exporters need to know about the request (filters were applied before)."""

    conversational: bool = True
    ties: str = "exclude"  # "exclude" or "label" (pair formats only)


class Exporter:
    name: ClassVar[str]
    extension: ClassVar[str]
    content_type: ClassVar[str]
    pair_level: ClassVar[bool] = False  # True: only comparisons with a label reach write()

    def write(self, pairs: Iterable[Pair], out: BinaryIO, options: WriteOptions) -> int:
        """Write every row to ``out``; return the number of rows written."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Exporter]] = {}


def write_per_vote(pairs: Iterable[Pair], write_pair: Callable[[Pair], None]) -> int:
    """The vote-level formats' loop: ``write_pair`` writes one row per vote of a pair, a pair with
    no votes writes nothing; returns the number of rows, one per vote."""
    rows = 0
    for pair in pairs:
        if pair.votes:
            write_pair(pair)
            rows += len(pair.votes)
    return rows


def write_json_lines(rows: Iterable[dict | None], out: BinaryIO) -> int:
    """The pair-level formats' writer: each row as one JSON line (keys sorted, UTF-8 kept), a None
    row (a pair the format leaves out) skipped; returns the number of lines."""
    written = 0
    for row in rows:
        if row is not None:
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True).encode() + b"\n")
            written += 1
    return written


def register(cls: type[Exporter]) -> type[Exporter]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"Two exporters are named {cls.name!r}.")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__package__}.{module.name}")


def available_formats() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_exporter(name: str) -> Exporter:
    """A fresh exporter for the format ``name``; KeyError names the formats there are."""
    _load_all()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(
            f"Unknown export format {name!r}; choose one of {', '.join(sorted(_REGISTRY))}."
        ) from None


# The columns of vote-level formats, in file order: the vote's own, then its comparison's.
VOTE_COLUMNS = (
    "judgement_id",
    "imported",
    "source",
    "annotator",
    "choice",
    "choice_shown",
    "strength",
    "rationale",
    "duration_ms",
    "left",
    "created_at",
)
PAIR_COLUMNS = (
    "comparison_id",
    "prompt_id",
    "is_gold",
    "gold_choice",
    "label",
    "agreement",
    "model_a",
    "model_b",
    "prompt",
    "response_a",
    "response_b",
)


def vote_values(vote: Vote) -> tuple:
    """The values of ``VOTE_COLUMNS`` for one vote (``created_at`` as ISO 8601 text)."""
    shown = shown_choice(vote.choice, left=vote.left) if vote.left else None
    return (
        vote.judgement_id,
        vote.imported,
        vote.source,
        vote.annotator,
        vote.choice,
        shown,
        vote.strength,
        vote.rationale,
        vote.duration_ms,
        vote.left,
        vote.created_at.isoformat() if isinstance(vote.created_at, dt.datetime) else vote.created_at,
    )


def pair_values(pair: Pair) -> tuple:
    """The values of ``PAIR_COLUMNS`` for one comparison (``prompt`` as the messages list)."""
    return (
        pair.comparison_id,
        pair.prompt_id,
        pair.is_gold,
        pair.gold_choice or None,
        pair.label,
        None if pair.agreement is None else round(pair.agreement, 6),
        pair.model_a,
        pair.model_b,
        pair.messages,
        pair.response_a,
        pair.response_b,
    )
