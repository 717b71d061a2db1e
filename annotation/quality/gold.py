"""Gold trust: the one definition of whom gold items vouch for, used by exports, training
snapshots and the quality report.

An annotator is *untested* until they have judged ``GOLD_MIN_JUDGEMENTS`` gold items (fewer say
more about luck than care); after that they are *flagged* when their accuracy is below the
threshold (the project's ``gold_accuracy_threshold`` unless a caller names another) and *trusted*
otherwise. Exports leave flagged annotators out and keep untested ones (``exclude_flagged``,
``min_gold_accuracy``); a training snapshot's ``gold_checked_only`` keeps trusted annotators only.
Both go through :func:`gold_trust_filter`; the difference is its ``keep_untested``.
"""

from dataclasses import dataclass

from django.db.models import Count, F, Q

from annotation.models import Judgement, Project

GOLD_MIN_JUDGEMENTS = 3
TRUSTED, FLAGGED, UNTESTED = "trusted", "flagged", "untested"


@dataclass(frozen=True)
class GoldRecord:
    seen: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.seen if self.seen else None

    @property
    def reliability(self) -> float:
        """Accuracy with a uniform prior (Laplace): 0.5 for an annotator never tested on gold."""
        return (self.correct + 1) / (self.seen + 2)

    def verdict(self, threshold: float, *, min_judgements: int = GOLD_MIN_JUDGEMENTS) -> str:
        """``TRUSTED``, ``FLAGGED`` or ``UNTESTED`` (too few gold items judged to say)."""
        if self.seen < min_judgements:
            return UNTESTED
        # Counts, not a float accuracy: 2 of 3 right is not below a threshold of 2/3.
        return FLAGGED if self.correct < threshold * self.seen else TRUSTED


def gold_records(*, project: Project) -> dict[int, GoldRecord]:
    """``{annotator_id: GoldRecord}`` for every annotator who judged a gold comparison."""
    rows = (
        Judgement.objects.filter(comparison__project=project, comparison__is_gold=True)
        .values("annotator_id")
        .annotate(seen=Count("id"), correct=Count("id", filter=Q(choice=F("comparison__gold_choice"))))
        .order_by("annotator_id")
    )
    return {row["annotator_id"]: GoldRecord(seen=row["seen"], correct=row["correct"]) for row in rows}


def gold_verdicts(
    *, project: Project, threshold: float | None = None, min_judgements: int = GOLD_MIN_JUDGEMENTS
) -> dict[int, str]:
    """``{annotator_id: verdict}`` for every annotator who judged a gold comparison; anyone else is
    ``UNTESTED``. ``threshold`` defaults to the project's."""
    if threshold is None:
        threshold = project.gold_accuracy_threshold
    return {
        annotator_id: record.verdict(threshold, min_judgements=min_judgements)
        for annotator_id, record in gold_records(project=project).items()
    }


def gold_trust_filter(
    *,
    project: Project,
    keep_untested: bool,
    threshold: float | None = None,
    min_judgements: int = GOLD_MIN_JUDGEMENTS,
    field: str = "annotator_id",
) -> Q:
    """A filter on votes (``field`` names their annotator) that keeps trusted annotators, and
    untested ones when ``keep_untested``; flagged annotators are always left out."""
    verdicts = gold_verdicts(project=project, threshold=threshold, min_judgements=min_judgements)
    if keep_untested:
        flagged = sorted(pk for pk, verdict in verdicts.items() if verdict == FLAGGED)
        return ~Q(**{f"{field}__in": flagged}) if flagged else Q()
    return Q(**{f"{field}__in": sorted(pk for pk, verdict in verdicts.items() if verdict == TRUSTED)})


def annotators_flagged(*, project: Project, threshold: float | None = None) -> set[int]:
    """Ids of annotators below the gold accuracy threshold (the project's unless given)."""
    return {
        pk
        for pk, verdict in gold_verdicts(project=project, threshold=threshold).items()
        if verdict == FLAGGED
    }
