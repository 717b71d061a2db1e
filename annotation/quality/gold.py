"""Gold accuracy: how often each annotator gives the known answer on gold comparisons.

An annotator is *flagged* when they have judged at least ``GOLD_MIN_JUDGEMENTS`` gold items and
their accuracy is below the project's ``gold_accuracy_threshold``: fewer items than that say more
about luck than care. Flagged annotators' votes can be left out of exports (``exclude_flagged``)
and training data (``annotators_flagged``).
"""

from dataclasses import dataclass

from django.db.models import Count, F, Q

from annotation.models import Judgement, Project

GOLD_MIN_JUDGEMENTS = 3


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

    def below(self, threshold: float, *, min_judgements: int = GOLD_MIN_JUDGEMENTS) -> bool:
        return self.seen >= min_judgements and self.correct < threshold * self.seen


def gold_records(*, project: Project) -> dict[int, GoldRecord]:
    """``{annotator_id: GoldRecord}`` for every annotator who judged a gold comparison."""
    rows = (
        Judgement.objects.filter(comparison__project=project, comparison__is_gold=True)
        .values("annotator_id")
        .annotate(seen=Count("id"), correct=Count("id", filter=Q(choice=F("comparison__gold_choice"))))
        .order_by("annotator_id")
    )
    return {row["annotator_id"]: GoldRecord(seen=row["seen"], correct=row["correct"]) for row in rows}


def annotators_below_gold_accuracy(
    *, project: Project, threshold: float, min_judgements: int = GOLD_MIN_JUDGEMENTS
) -> set[int]:
    """Ids of annotators whose gold accuracy is below ``threshold`` (with enough gold judged)."""
    return {
        annotator_id
        for annotator_id, record in gold_records(project=project).items()
        if record.below(threshold, min_judgements=min_judgements)
    }


def annotators_flagged(*, project: Project) -> set[int]:
    """Ids of annotators below the project's gold accuracy threshold."""
    return annotators_below_gold_accuracy(project=project, threshold=project.gold_accuracy_threshold)
