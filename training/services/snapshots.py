"""Data snapshots: freeze exactly which votes a run trains on.

A snapshot records the filters and the ids of the judgements they selected (plus, when asked,
comparisons whose imported label is used), and a sha256 over both, so a run can always say what
it learned from. Both-bad votes and comparisons of more than two responses carry no pairwise
preference and are left out; prompts held back for evaluation never enter training data.

Votes are selected through ``annotation.votes``, the path exports read through too, so gold
trust, agreement and imported labels mean the same in a dataset and in a run
(``tests/training/test_exports_and_snapshots_agree.py``).
"""

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass

from django.db import transaction

from annotation.models import Choice, Comparison, ComparisonResponse, Judgement, Project
from annotation.parsing import parse_bool, parse_datetime, parse_fraction, parse_positive_int, reject_unknown
from annotation.services.errors import ValidationFailed
from annotation.sides import chosen_rejected
from annotation.votes import VoteFilters, select_votes
from training.models import DataSnapshot

PAIRWISE_CHOICES = (Choice.A, Choice.B, Choice.TIE)


@dataclass(frozen=True)
class SnapshotFilters:
    gold_checked_only: bool = False
    """Only annotators gold items vouch for (``annotation.quality.gold``: enough gold judged, at
    or above the project's threshold); annotators not yet tested are left out too."""
    min_agreement: float | None = None
    """Only comparisons whose most common choice has at least this share of the counted votes
    (0 to 1): the selected judgements, both-bad too, and the imported label when it is included."""
    since: str | None = None
    until: str | None = None
    """ISO 8601 bounds on the judgement time (inclusive since, exclusive until)."""
    include_prior_labels: bool = False
    """Count imported labels (``Comparison.prior_choice``) as votes, and train on those of
    comparisons no selected judgement labels."""
    eval_fraction: float = 0.1
    """Share of comparisons held out as the run's evaluation set (when there are 20 or more)."""
    max_examples: int | None = None
    """Keep at most this many labels: the newest votes first, then the newest imported labels
    (a quick run on a big project should not pay for preprocessing data it never reaches)."""

    @classmethod
    def from_dict(cls, raw: dict | None) -> "SnapshotFilters":
        """Validate JSON filters (booleans and numbers as JSON gives them, not as text)."""
        raw = dict(raw or {})
        reject_unknown(raw, cls.__dataclass_fields__, what="snapshot filters", field="filters")
        for name in ("gold_checked_only", "include_prior_labels"):
            if name in raw:
                parse_bool(raw[name], name=name, field="filters", text=False)
        for name, high in (("min_agreement", 1.0), ("eval_fraction", 0.5)):
            if raw.get(name) is not None:
                parse_fraction(raw[name], name=name, field="filters", high=high, text=False)
        if raw.get("max_examples") is not None:
            parse_positive_int(raw["max_examples"], name="max_examples", field="filters", text=False)
        for name in ("since", "until"):
            if raw.get(name) in (None, ""):
                raw[name] = None
            else:
                parse_datetime(raw[name], name=name, field="filters")
        return cls(**raw)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def vote_filters(self) -> VoteFilters:
        """The selection a training run reads: exports read through the same one."""
        return VoteFilters(
            since=parse_datetime(self.since, name="since") if self.since else None,
            until=parse_datetime(self.until, name="until") if self.until else None,
            trusted_only=self.gold_checked_only,
            include_imported=self.include_prior_labels,
            pairs_only=True,
            include_held_back=False,
            min_agreement=self.min_agreement,
        )


def snapshot_selection(*, project: Project, filters: SnapshotFilters) -> tuple[list[tuple], list[tuple]]:
    """(judgement rows ``(id, comparison_id, choice, strength)``, imported-label rows
    ``(comparison_id, choice)``) a snapshot of ``filters`` trains on, each in id order. Both-bad
    votes carry no pairwise preference: they count towards agreement but are not examples."""
    rows: list[tuple] = []
    prior_rows: list[tuple] = []
    for selected in select_votes(project=project, filters=filters.vote_filters):
        comparison_id, (prior_choice, _) = selected.comparison_id, selected.prior
        for _, judgement_id, _, choice, strength, *_ in selected.judgements:
            if choice in PAIRWISE_CHOICES:
                rows.append((judgement_id, comparison_id, choice, strength))
        if selected.imported and not selected.judgements and prior_choice in PAIRWISE_CHOICES:
            prior_rows.append((comparison_id, prior_choice))
    rows.sort()
    return rows, prior_rows


@transaction.atomic
def snapshot_create(*, project: Project, filters: dict | SnapshotFilters | None = None) -> DataSnapshot:
    """Select the votes matching ``filters`` and freeze their ids. Raises ValidationFailed for bad
    filters or when nothing matches."""
    if not isinstance(filters, SnapshotFilters):
        filters = SnapshotFilters.from_dict(filters)
    rows, prior_rows = snapshot_selection(project=project, filters=filters)
    prior_ids = [r[0] for r in prior_rows]

    if filters.max_examples is not None:
        rows = rows[-filters.max_examples :]
        room = filters.max_examples - len(rows)
        prior_rows = prior_rows[-room:] if room > 0 else []
        prior_ids = [r[0] for r in prior_rows]

    if not rows and not prior_ids:
        raise ValidationFailed(
            "No votes match these filters: judge some comparisons first (or include imported labels).",
            field="filters",
        )
    digest = hashlib.sha256(
        json.dumps(
            {"filters": filters.to_dict(), "judgements": rows, "priors": prior_rows},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    return DataSnapshot.objects.create(
        project=project,
        filters=filters.to_dict(),
        judgement_ids=[r[0] for r in rows],
        prior_comparison_ids=prior_ids,
        judgement_count=len(rows),
        example_count=len(rows) + len(prior_ids),
        sha256=digest,
    )


def snapshot_examples(*, snapshot: DataSnapshot) -> tuple[list[dict], list[dict]]:
    """The snapshot's votes as keyword arguments of ``training.ml.data.PreferenceExample``,
    split into (train, eval) by comparison so votes on one comparison never straddle the split.

    >>> snapshot_examples(snapshot=s)[0][0]  # doctest: +SKIP
    {'prompt': [{'role': 'user', 'content': 'Hi?'}], 'chosen': 'Hello!', 'rejected': 'Go away.',
     'margin': 0.667, 'weight': 1.0, 'annotator_id': '7', 'is_tie': False}
    """
    project = snapshot.project
    scale = len(project.strength_scale or [])
    judgements = list(
        Judgement.objects.filter(pk__in=snapshot.judgement_ids)
        .order_by("id")
        .values_list("comparison_id", "choice", "strength", "annotator_id")
    )
    labelled = [(c, choice, strength, str(annotator)) for c, choice, strength, annotator in judgements]
    priors = Comparison.objects.filter(pk__in=snapshot.prior_comparison_ids).values_list("id", "prior_choice")
    labelled += [(c, choice, None, None) for c, choice in priors.order_by("id")]

    comparison_ids = {row[0] for row in labelled}
    texts: dict[int, dict[int, str]] = defaultdict(dict)
    for comparison_id, position, text in ComparisonResponse.objects.filter(
        comparison_id__in=comparison_ids
    ).values_list("comparison_id", "position", "response__text"):
        texts[comparison_id][position] = text
    prompts = dict(Comparison.objects.filter(pk__in=comparison_ids).values_list("id", "prompt__messages"))

    eval_ids = _eval_comparisons(
        sorted(comparison_ids), snapshot.filters.get("eval_fraction", 0.1), snapshot.sha256
    )
    train: list[dict] = []
    evaluation: list[dict] = []
    for comparison_id, choice, strength, annotator in labelled:
        chosen, rejected = chosen_rejected(choice, texts[comparison_id][0], texts[comparison_id][1])
        example = {
            "prompt": prompts[comparison_id],
            "chosen": chosen,
            "rejected": rejected,
            "margin": round((strength + 1) / scale, 4) if strength is not None and scale else None,
            "weight": 1.0,
            "annotator_id": annotator,
            "is_tie": choice == Choice.TIE,
        }
        (evaluation if comparison_id in eval_ids else train).append(example)
    return train, evaluation


def _eval_comparisons(comparison_ids: list[int], fraction: float, seed: str) -> set[int]:
    """A deterministic share of comparisons (by a hash of the snapshot and the id) for evaluation."""
    if fraction <= 0 or len(comparison_ids) < 20:
        return set()
    ranked = sorted(comparison_ids, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    return set(ranked[: max(1, round(len(ranked) * fraction))])


def snapshot_prompts(*, snapshot: DataSnapshot) -> list:
    """The distinct prompts an online RL run trains on: those of the snapshot's training half
    (``snapshot_examples``' split), first seen first. Held-back prompts never reach a snapshot,
    and a prompt that also has a comparison in the evaluation half is left out, so whatever
    evaluates the policy later sees prompts it was not optimised on."""
    train, evaluation = snapshot_examples(snapshot=snapshot)
    held_out = {_prompt_key(row["prompt"]) for row in evaluation}
    prompts: dict[str, object] = {}
    for row in train:
        key = _prompt_key(row["prompt"])
        if key not in held_out:
            prompts.setdefault(key, row["prompt"])
    return list(prompts.values())


def _prompt_key(prompt) -> str:
    return json.dumps(prompt, sort_keys=True, separators=(",", ":"))
