"""The quality report of one project: agreement, gold accuracy, bias and care, per annotator and
overall, plus progress over time. One streaming pass over the judgements, so memory grows with
the number of annotators (and annotator pairs), not with the number of votes.

Definitions (all over human judgements; imported labels are not annotators and are left out):
- *Krippendorff's alpha*: nominal, over comparisons with two or more judgements.
- *Alpha without an annotator*: the project's alpha with that annotator's votes taken out; a
  value above the project's alpha means they pull agreement down.
- *Pairwise Cohen's kappa*: for each pair of annotators, over the comparisons both judged; an
  annotator's ``kappa_mean`` is the mean over their pairs weighted by shared items.
- *Majority agreement*: project-wide, the share of votes (on comparisons with two or more) that
  equal their comparison's plurality label; a split counts as no agreement. Per annotator, the
  share of their votes equal to the plurality of the *other* annotators (leave-one-out).
- *Position bias*: among a/b choices, the share that picked the response shown on the left,
  with a two-sided binomial test against 0.5.
- *Length bias*: among a/b choices between responses of different lengths, the share that picked
  the longer one (binomial test against 0.5), and the mean length gap chosen minus rejected.
- *Fast*: judgements that took less than ``fast_ms`` milliseconds.
"""

from array import array
from collections import defaultdict
from dataclasses import dataclass
from itertools import groupby

from django.contrib.auth import get_user_model
from django.db.models import Count, FilteredRelation, Q
from django.db.models.functions import Length, TruncDate

from annotation.models import Comparison, Judgement, Project
from annotation.quality.gold import GOLD_MIN_JUDGEMENTS, gold_records
from annotation.quality.stats import (
    LABELS,
    binomial_p,
    cohen_kappa,
    krippendorff_alpha,
    krippendorff_alpha_of_matrix,
    plurality,
    rate,
)

FAST_MS_DEFAULT = 2000  # reading two responses and a prompt in under 2 s is not careful reading
CHUNK = 5000


@dataclass
class Tally:
    """Running counts for one annotator (or the whole project)."""

    judgements: int = 0
    ties: int = 0
    both_bad: int = 0
    decisive: int = 0
    left: int = 0
    length_decisive: int = 0
    longer: int = 0
    length_gap_sum: int = 0
    timed: int = 0
    fast: int = 0
    majority_seen: int = 0
    majority_agree: int = 0
    kappa_weighted_sum: float = 0.0
    kappa_items: int = 0

    def add(self, *, choice: str, duration_ms, left_is_a: bool, len_a, len_b, fast_ms: int) -> None:
        self.judgements += 1
        if choice == "tie":
            self.ties += 1
        elif choice == "both_bad":
            self.both_bad += 1
        else:
            self.decisive += 1
            chose_a = choice == "a"
            self.left += chose_a == left_is_a
            if len_a is not None and len_b is not None and len_a != len_b:
                self.length_decisive += 1
                self.longer += chose_a == (len_a > len_b)
                self.length_gap_sum += (len_a - len_b) if chose_a else (len_b - len_a)
        if duration_ms is not None:
            self.timed += 1
            self.fast += duration_ms < fast_ms

    def bias(self, fast_ms: int) -> dict:
        return {
            "decisive": self.decisive,
            "left_rate": rate(self.left, self.decisive),
            "left_p": binomial_p(self.left, self.decisive),
            "length_decisive": self.length_decisive,
            "longer_rate": rate(self.longer, self.length_decisive),
            "longer_p": binomial_p(self.longer, self.length_decisive),
            "mean_length_gap": rate(self.length_gap_sum, self.length_decisive),
            "fast_ms": fast_ms,
            "fast_rate": rate(self.fast, self.timed),
            "tie_rate": rate(self.ties, self.judgements),
            "both_bad_rate": rate(self.both_bad, self.judgements),
        }


def _judgement_rows(project: Project):
    """(comparison, annotator, choice, duration, left response, response A, len A, len B), by comparison."""
    return (
        Judgement.objects.filter(comparison__project=project)
        .annotate(
            slot_a=FilteredRelation("comparison__slots", condition=Q(comparison__slots__position=0)),
            slot_b=FilteredRelation("comparison__slots", condition=Q(comparison__slots__position=1)),
        )
        .annotate(len_a=Length("slot_a__response__text"), len_b=Length("slot_b__response__text"))
        .order_by("comparison_id", "id")
        .values_list(
            "comparison_id",
            "annotator_id",
            "choice",
            "duration_ms",
            "left_response_id",
            "slot_a__response_id",
            "len_a",
            "len_b",
        )
        .iterator(chunk_size=CHUNK)
    )


def progress_over_time(*, project: Project) -> list[dict]:
    """Judgements per day (UTC) and the running total."""
    rows = (
        Judgement.objects.filter(comparison__project=project)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    total = 0
    series = []
    for row in rows:
        total += row["n"]
        series.append({"date": row["day"].isoformat(), "judgements": row["n"], "cumulative": total})
    return series


def _alpha_without_each(unit_counts, voted_units, voted_labels) -> dict[int, float | None]:
    import numpy as np

    if not unit_counts:
        return {}
    matrix = np.asarray([[counts.get(label, 0) for label in LABELS] for counts in unit_counts], dtype=float)
    result = {}
    for annotator_id, units in voted_units.items():
        without = matrix.copy()
        np.subtract.at(
            without,
            (np.frombuffer(units, dtype=np.int64), np.frombuffer(voted_labels[annotator_id], dtype=np.int8)),
            1,
        )
        result[annotator_id] = krippendorff_alpha_of_matrix(without)
    return result


def project_quality_report(*, project: Project, fast_ms: int = FAST_MS_DEFAULT) -> dict:
    """Everything the dashboard and ``GET /api/projects/{slug}/quality/`` show. JSON-ready."""
    overall = Tally()
    per_annotator: dict[int, Tally] = defaultdict(Tally)
    confusions: dict[tuple[int, int], dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    unit_counts: list[dict[str, int]] = []
    # Where each annotator voted among units with overlap: (unit index, label index), compactly.
    voted_units: dict[int, array] = defaultdict(lambda: array("l"))
    voted_labels: dict[int, array] = defaultdict(lambda: array("b"))
    majority_votes = majority_agree = 0

    for _comparison_id, rows in groupby(_judgement_rows(project), key=lambda row: row[0]):
        votes = []
        for _, annotator_id, choice, duration_ms, left_id, a_id, len_a, len_b in rows:
            kwargs = {
                "choice": choice,
                "duration_ms": duration_ms,
                "left_is_a": left_id == a_id,
                "len_a": len_a,
                "len_b": len_b,
                "fast_ms": fast_ms,
            }
            overall.add(**kwargs)
            per_annotator[annotator_id].add(**kwargs)
            votes.append((annotator_id, choice))
        if len(votes) < 2:
            continue
        counts: dict[str, int] = defaultdict(int)
        for _, choice in votes:
            counts[choice] += 1
        for annotator_id, choice in votes:
            voted_units[annotator_id].append(len(unit_counts))
            voted_labels[annotator_id].append(LABELS.index(choice))
        unit_counts.append(dict(counts))
        winner = plurality(counts)
        majority_votes += len(votes)
        majority_agree += counts[winner] if winner else 0
        for annotator_id, choice in votes:
            counts[choice] -= 1
            others = plurality(counts)
            counts[choice] += 1
            if others is not None:
                tally = per_annotator[annotator_id]
                tally.majority_seen += 1
                tally.majority_agree += choice == others
        for i, (first, first_choice) in enumerate(votes):
            for second, second_choice in votes[i + 1 :]:
                if first < second:
                    confusions[(first, second)][(first_choice, second_choice)] += 1
                else:
                    confusions[(second, first)][(second_choice, first_choice)] += 1

    pairwise = []
    kappa_sum = 0.0
    kappa_items = 0
    for (first, second), confusion in sorted(confusions.items()):
        items = sum(confusion.values())
        kappa = cohen_kappa(confusion)
        pairwise.append({"annotators": [first, second], "items": items, "kappa": kappa})
        if kappa is None:
            continue
        kappa_sum += kappa * items
        kappa_items += items
        for annotator_id in (first, second):
            per_annotator[annotator_id].kappa_weighted_sum += kappa * items
            per_annotator[annotator_id].kappa_items += items

    alpha_without = _alpha_without_each(unit_counts, voted_units, voted_labels)
    gold = gold_records(project=project)
    threshold = project.gold_accuracy_threshold
    names = dict(
        get_user_model()
        .objects.filter(pk__in=set(per_annotator) | set(gold))
        .values_list("pk", get_user_model().USERNAME_FIELD)
    )
    for row in pairwise:
        row["usernames"] = [names.get(pk, str(pk)) for pk in row["annotators"]]

    annotators = []
    for annotator_id in sorted(set(per_annotator) | set(gold), key=lambda pk: names.get(pk, "")):
        tally = per_annotator[annotator_id]
        record = gold.get(annotator_id)
        annotators.append(
            {
                "id": annotator_id,
                "username": names.get(annotator_id, str(annotator_id)),
                "judgements": tally.judgements,
                "kappa_mean": rate(tally.kappa_weighted_sum, tally.kappa_items),
                "alpha_without": alpha_without.get(annotator_id),
                "majority_agreement": rate(tally.majority_agree, tally.majority_seen),
                "gold_seen": record.seen if record else 0,
                "gold_correct": record.correct if record else 0,
                "gold_accuracy": record.accuracy if record else None,
                "flagged": bool(record and record.below(threshold)),
                **tally.bias(fast_ms),
            }
        )

    gold_seen = sum(record.seen for record in gold.values())
    gold_correct = sum(record.correct for record in gold.values())
    comparisons = Comparison.objects.filter(project=project).aggregate(
        total=Count("id"),
        complete=Count("id", filter=Q(judgement_count__gte=project.overlap)),
        gold=Count("id", filter=Q(is_gold=True)),
    )
    return {
        "project": {
            "slug": project.slug,
            "judgements": overall.judgements,
            "annotators": len(per_annotator),
            "comparisons": comparisons["total"],
            "comparisons_complete": comparisons["complete"],
            "gold_comparisons": comparisons["gold"],
            "agreement": {
                "krippendorff_alpha": krippendorff_alpha(unit_counts),
                "mean_pairwise_kappa": rate(kappa_sum, kappa_items),
                "majority_agreement": rate(majority_agree, majority_votes),
                "comparisons_with_overlap": len(unit_counts),
            },
            "gold": {
                "seen": gold_seen,
                "correct": gold_correct,
                "accuracy": rate(gold_correct, gold_seen),
                "threshold": threshold,
                "min_judgements": GOLD_MIN_JUDGEMENTS,
                "flagged": sum(1 for row in annotators if row["flagged"]),
            },
            "bias": overall.bias(fast_ms),
        },
        "annotators": annotators,
        "pairwise_kappa": pairwise,
        "progress": progress_over_time(project=project),
    }
