"""Data snapshots: freeze exactly which votes a run trains on.

A snapshot records the filters and the ids of the judgements they selected (plus, when asked,
comparisons whose imported label is used), and a sha256 over both, so a run can always say what
it learned from. Both-bad votes and comparisons of more than two responses carry no pairwise
preference and are left out; prompts held back for evaluation never enter training data.
"""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count
from django.utils.dateparse import parse_datetime

from annotation.models import Choice, Comparison, ComparisonResponse, Judgement, Project
from annotation.services.errors import ValidationFailed
from training.models import DataSnapshot

PAIRWISE_CHOICES = (Choice.A, Choice.B, Choice.TIE)


@dataclass(frozen=True)
class SnapshotFilters:
    gold_checked_only: bool = False
    """Only annotators whose accuracy on gold items reaches the project's threshold."""
    min_agreement: float | None = None
    """Only comparisons whose majority choice has at least this share of the votes (0 to 1)."""
    since: str | None = None
    until: str | None = None
    """ISO 8601 bounds on the judgement time (inclusive since, exclusive until)."""
    include_prior_labels: bool = False
    """Also train on imported labels (``Comparison.prior_choice``) of comparisons nobody judged."""
    eval_fraction: float = 0.1
    """Share of comparisons held out as the run's evaluation set (when there are 20 or more)."""
    max_examples: int | None = None
    """Keep at most this many labels: the newest votes first, then the newest imported labels
    (a quick run on a big project should not pay for preprocessing data it never reaches)."""

    @classmethod
    def from_dict(cls, raw: dict | None) -> "SnapshotFilters":
        raw = dict(raw or {})
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValidationFailed(
                f"Unknown snapshot filters: {', '.join(sorted(unknown))}.", field="filters"
            )
        for name in ("gold_checked_only", "include_prior_labels"):
            if name in raw and not isinstance(raw[name], bool):
                raise ValidationFailed(f"{name} must be true or false.", field="filters")
        for name, low, high in (("min_agreement", 0.0, 1.0), ("eval_fraction", 0.0, 0.5)):
            value = raw.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ValidationFailed(f"{name} must be a number from {low} to {high}.", field="filters")
        limit = raw.get("max_examples")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValidationFailed("max_examples must be a positive integer.", field="filters")
        for name in ("since", "until"):
            value = raw.get(name)
            if value in (None, ""):
                raw[name] = None
                continue
            if not isinstance(value, str) or _parse_time(value) is None:
                raise ValidationFailed(f"{name} must be an ISO 8601 date-time.", field="filters")
        return cls(**raw)

    def to_dict(self) -> dict:
        return asdict(self)


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        from django.utils import timezone

        parsed = timezone.make_aware(parsed)
    return parsed


def annotator_gold_accuracy(*, project: Project) -> dict[int, float]:
    """Accuracy of each annotator on the project's gold comparisons (annotators with gold votes)."""
    rows = Judgement.objects.filter(comparison__project=project, comparison__is_gold=True).values_list(
        "annotator_id", "choice", "comparison__gold_choice"
    )
    right: Counter[int] = Counter()
    total: Counter[int] = Counter()
    for annotator_id, choice, gold in rows:
        total[annotator_id] += 1
        right[annotator_id] += choice == gold
    return {annotator_id: right[annotator_id] / total[annotator_id] for annotator_id in total}


def _pairwise_comparisons(project: Project):
    """Comparisons of exactly two responses to prompts that are not held back."""
    return (
        Comparison.objects.filter(project=project, prompt__held_back=False)
        .annotate(n_slots=Count("slots"))
        .filter(n_slots=2)
    )


@transaction.atomic
def snapshot_create(*, project: Project, filters: dict | SnapshotFilters | None = None) -> DataSnapshot:
    """Select the votes matching ``filters`` and freeze their ids. Raises ValidationFailed for bad
    filters or when nothing matches."""
    if not isinstance(filters, SnapshotFilters):
        filters = SnapshotFilters.from_dict(filters)
    judgements = Judgement.objects.filter(
        comparison__in=_pairwise_comparisons(project), choice__in=PAIRWISE_CHOICES
    )
    if filters.since:
        judgements = judgements.filter(created_at__gte=_parse_time(filters.since))
    if filters.until:
        judgements = judgements.filter(created_at__lt=_parse_time(filters.until))
    if filters.gold_checked_only:
        accuracy = annotator_gold_accuracy(project=project)
        trusted = [a for a, acc in accuracy.items() if acc >= project.gold_accuracy_threshold]
        judgements = judgements.filter(annotator_id__in=trusted)
    rows = list(judgements.order_by("id").values_list("id", "comparison_id", "choice", "strength"))

    if filters.min_agreement is not None:
        # Agreement counts every vote on the comparison (both-bad too), not only the selected ones.
        votes: dict[int, Counter] = defaultdict(Counter)
        all_votes = Judgement.objects.filter(comparison_id__in={r[1] for r in rows})
        for comparison_id, choice in all_votes.values_list("comparison_id", "choice"):
            votes[comparison_id][choice] += 1
        agreed = {
            c
            for c, counter in votes.items()
            if max(counter.values()) / sum(counter.values()) >= filters.min_agreement
        }
        rows = [r for r in rows if r[1] in agreed]

    prior_ids: list[int] = []
    prior_rows: list[tuple[int, str]] = []
    if filters.include_prior_labels:
        prior_rows = list(
            _pairwise_comparisons(project)
            .filter(prior_choice__in=PAIRWISE_CHOICES, judgements__isnull=True)
            .order_by("id")
            .values_list("id", "prior_choice")
        )
        prior_ids = [r[0] for r in prior_rows]

    if filters.max_examples is not None:
        rows = sorted(rows, key=lambda r: r[0])[-filters.max_examples :]
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
        a, b = texts[comparison_id][0], texts[comparison_id][1]
        chosen, rejected = (b, a) if choice == Choice.B else (a, b)
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
