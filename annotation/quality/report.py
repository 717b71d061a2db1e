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

from itertools import groupby

from django.contrib.auth import get_user_model
from django.db.models import Count, FilteredRelation, Q
from django.db.models.functions import Length, TruncDate

from annotation.models import Comparison, Judgement, Project
from annotation.quality.gold import FLAGGED, GOLD_MIN_JUDGEMENTS, gold_records
from annotation.quality.stats import (
    LABELS,
    cohen_kappa,
    krippendorff_alpha,
    krippendorff_alpha_of_matrix,
    rate,
)
from annotation.quality.tally import VotePass

FAST_MS_DEFAULT = 2000  # reading two responses and a prompt in under 2 s is not careful reading
CHUNK = 5000


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


def _read_votes(project: Project, fast_ms: int) -> VotePass:
    votes = VotePass(fast_ms=fast_ms)
    for _comparison_id, rows in groupby(_judgement_rows(project), key=lambda row: row[0]):
        votes.add_comparison(rows)
    return votes


def _pairwise_kappa(votes: VotePass) -> tuple[list[dict], float | None]:
    """Cohen's kappa of every annotator pair, and their mean weighted by shared items; each
    annotator's tally gets their own weighted sum."""
    pairwise = []
    kappa_sum = 0.0
    kappa_items = 0
    for (first, second), confusion in sorted(votes.confusions.items()):
        items = sum(confusion.values())
        kappa = cohen_kappa(confusion)
        pairwise.append({"annotators": [first, second], "items": items, "kappa": kappa})
        if kappa is None:
            continue
        kappa_sum += kappa * items
        kappa_items += items
        for annotator_id in (first, second):
            votes.per_annotator[annotator_id].kappa_weighted_sum += kappa * items
            votes.per_annotator[annotator_id].kappa_items += items
    return pairwise, rate(kappa_sum, kappa_items)


def _annotator_row(
    annotator_id: int, *, name: str, votes: VotePass, gold: dict, alpha_without: dict, threshold
):
    tally = votes.per_annotator[annotator_id]
    record = gold.get(annotator_id)
    return {
        "id": annotator_id,
        "username": name,
        "judgements": tally.judgements,
        "kappa_mean": rate(tally.kappa_weighted_sum, tally.kappa_items),
        "alpha_without": alpha_without.get(annotator_id),
        "majority_agreement": rate(tally.majority_agree, tally.majority_seen),
        "gold_seen": record.seen if record else 0,
        "gold_correct": record.correct if record else 0,
        "gold_accuracy": record.accuracy if record else None,
        "flagged": bool(record and record.verdict(threshold) == FLAGGED),
        **tally.bias(votes.fast_ms),
    }


def _gold_summary(gold: dict, *, threshold: float, flagged: int) -> dict:
    seen = sum(record.seen for record in gold.values())
    correct = sum(record.correct for record in gold.values())
    return {
        "seen": seen,
        "correct": correct,
        "accuracy": rate(correct, seen),
        "threshold": threshold,
        "min_judgements": GOLD_MIN_JUDGEMENTS,
        "flagged": flagged,
    }


def _comparison_counts(project: Project) -> dict:
    return Comparison.objects.filter(project=project).aggregate(
        total=Count("id"),
        complete=Count("id", filter=Q(judgement_count__gte=project.overlap)),
        gold=Count("id", filter=Q(is_gold=True)),
    )


def _usernames(pks) -> dict[int, str]:
    user = get_user_model()
    return dict(user.objects.filter(pk__in=pks).values_list("pk", user.USERNAME_FIELD))


def project_quality_report(*, project: Project, fast_ms: int = FAST_MS_DEFAULT) -> dict:
    """Everything the dashboard and ``GET /api/projects/{slug}/quality/`` show. JSON-ready."""
    votes = _read_votes(project, fast_ms)
    pairwise, mean_kappa = _pairwise_kappa(votes)
    alpha_without = _alpha_without_each(votes.unit_counts, votes.voted_units, votes.voted_labels)
    gold = gold_records(project=project)
    threshold = project.gold_accuracy_threshold
    names = _usernames(set(votes.per_annotator) | set(gold))
    for row in pairwise:
        row["usernames"] = [names.get(pk, str(pk)) for pk in row["annotators"]]
    annotators = [
        _annotator_row(
            pk,
            name=names.get(pk, str(pk)),
            votes=votes,
            gold=gold,
            alpha_without=alpha_without,
            threshold=threshold,
        )
        for pk in sorted(set(votes.per_annotator) | set(gold), key=lambda pk: names.get(pk, ""))
    ]
    comparisons = _comparison_counts(project)
    return {
        "project": {
            "slug": project.slug,
            "judgements": votes.overall.judgements,
            "annotators": len(votes.per_annotator),
            "comparisons": comparisons["total"],
            "comparisons_complete": comparisons["complete"],
            "gold_comparisons": comparisons["gold"],
            "agreement": {
                "krippendorff_alpha": krippendorff_alpha(votes.unit_counts),
                "mean_pairwise_kappa": mean_kappa,
                "majority_agreement": rate(votes.majority_agree, votes.majority_votes),
                "comparisons_with_overlap": len(votes.unit_counts),
            },
            "gold": _gold_summary(
                gold, threshold=threshold, flagged=sum(row["flagged"] for row in annotators)
            ),
            "bias": votes.overall.bias(fast_ms),
        },
        "annotators": annotators,
        "pairwise_kappa": pairwise,
        "progress": progress_over_time(project=project),
    }
