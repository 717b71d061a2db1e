"""``select_votes``: the comparisons a dataset keeps, with the votes that count on each."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, FilteredRelation, OuterRef, Q

from annotation.models import Comparison, ComparisonResponse, Judgement, Project, Response
from annotation.quality.aggregation import aggregate, enough_votes
from annotation.quality.gold import gold_records, gold_trust_filter
from annotation.services.errors import ValidationFailed
from annotation.votes.filters import VoteFilters
from annotation.votes.rows import (
    COMPARISON_FIELDS,
    JUDGEMENT_FIELDS,
    IsoUtc,
    groups_by_copy,
    groups_by_cursors,
)

UNKNOWN_RELIABILITY = 0.5  # the weight of an imported label, and of an annotator never tested on gold
_PRIOR_CHOICE = COMPARISON_FIELDS.index("prior_choice")
_PRIOR_SOURCE = COMPARISON_FIELDS.index("prior_source")
_CREATED = COMPARISON_FIELDS.index("created")
_ANNOTATOR = JUDGEMENT_FIELDS.index("annotator_id")
_CHOICE = JUDGEMENT_FIELDS.index("choice")


@dataclass(slots=True)
class SelectedComparison:
    comparison: tuple  # a COMPARISON_FIELDS row
    judgements: list[tuple]  # its selected JUDGEMENT_FIELDS rows, in id order
    imported: bool  # whether its imported label (prior_choice) counts as a vote
    label: str | None  # the aggregated choice; None when the votes split
    agreement: float

    @property
    def comparison_id(self) -> int:
        return self.comparison[0]

    @property
    def prior(self) -> tuple[str, str]:
        """(imported choice, its source); empty strings when the comparison came unlabelled."""
        return self.comparison[_PRIOR_CHOICE], self.comparison[_PRIOR_SOURCE]


def model_version_names(*, project: Project) -> set[str]:
    """The names of the model versions that wrote responses in ``project``."""
    rows = (
        Response.objects.filter(prompt__project=project)
        .exclude(model_version_name="")
        .values_list("model_version_name", flat=True)
        .distinct()
    )
    return set(rows)


def _comparisons(*, project: Project, filters: VoteFilters):
    comparisons = Comparison.objects.filter(project=project).annotate(
        slot_a=FilteredRelation("slots", condition=Q(slots__position=0)),
        slot_b=FilteredRelation("slots", condition=Q(slots__position=1)),
    )
    comparisons = comparisons.filter(slot_a__response__isnull=False, slot_b__response__isnull=False)
    if filters.pairs_only:
        third = ComparisonResponse.objects.filter(comparison=OuterRef("pk"), position__gte=2)
        comparisons = comparisons.filter(~Exists(third))
    if not filters.include_held_back:
        comparisons = comparisons.filter(prompt__held_back=False)
    if filters.model_versions:
        unknown = sorted(set(filters.model_versions) - model_version_names(project=project))
        if unknown:
            raise ValidationFailed(
                f"No model version named {unknown[0]!r} wrote responses in this project.",
                field="model_versions",
            )
        comparisons = comparisons.filter(
            Q(slot_a__response__model_version_name__in=filters.model_versions)
            | Q(slot_b__response__model_version_name__in=filters.model_versions)
        )
    return comparisons.annotate(created=IsoUtc("created_at")).order_by().values_list(*COMPARISON_FIELDS)


def _judgements(*, project: Project, filters: VoteFilters):
    judgements = Judgement.objects.filter(comparison__project=project)
    if filters.since:
        judgements = judgements.filter(created_at__gte=filters.since)
    if filters.until:
        judgements = judgements.filter(created_at__lt=filters.until)
    if filters.annotators:
        judgements = judgements.filter(
            **{f"annotator__{get_user_model().USERNAME_FIELD}__in": filters.annotators}
        )
    if filters.exclude_flagged:
        judgements = judgements.filter(gold_trust_filter(project=project, keep_untested=True))
    if filters.gold_threshold is not None:
        judgements = judgements.filter(
            gold_trust_filter(project=project, keep_untested=True, threshold=filters.gold_threshold)
        )
    if filters.trusted_only:
        judgements = judgements.filter(gold_trust_filter(project=project, keep_untested=False))
    return judgements.annotate(created=IsoUtc("created_at")).order_by().values_list(*JUDGEMENT_FIELDS)


def select_votes(
    *,
    project: Project,
    filters: VoteFilters,
    fast: bool = True,
) -> Iterator[SelectedComparison]:
    """The comparisons of ``project`` that pass ``filters``, in comparison id order, streamed.

    ``fast`` reads through COPY (no other query may run on the connection until the stream
    ends), ``fast=False`` through two cursors; both give the same comparisons. Run it inside a
    transaction so every read sees one snapshot.
    """
    comparisons = _comparisons(project=project, filters=filters)
    judgements = _judgements(project=project, filters=filters)
    reliability: dict[int, float] = {}
    if filters.aggregation == "weighted":
        reliability = {pk: record.reliability for pk, record in gold_records(project=project).items()}
    groups = groups_by_copy(comparisons, judgements) if fast else groups_by_cursors(comparisons, judgements)

    counts_imported, method = filters.counts_imported, filters.aggregation
    weighted = method == "weighted"
    min_votes, min_agreement = filters.min_votes, filters.min_agreement
    for comparison, rows in groups:
        choices = [row[_CHOICE] for row in rows]
        prior = comparison[_PRIOR_CHOICE]
        imported = bool(counts_imported and prior and filters.dated(comparison[_CREATED]))
        if imported:
            choices.append(prior)
        if not choices:
            continue
        weights = None
        if weighted:
            weights = [reliability.get(row[_ANNOTATOR], UNKNOWN_RELIABILITY) for row in rows]
            weights += [UNKNOWN_RELIABILITY] if imported else []
        label, share = aggregate(choices, method, weights)
        if enough_votes(len(choices), share, min_votes, min_agreement):
            yield SelectedComparison(comparison, rows, imported, label, share)
