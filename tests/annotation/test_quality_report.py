import datetime as dt

import krippendorff
import numpy as np
import pytest

from annotation.models import Judgement
from annotation.quality.report import project_quality_report
from annotation.quality.stats import cohen_kappa, krippendorff_alpha, plurality
from tests.factories import ComparisonFactory, MembershipFactory, judgement

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair_of_annotators(project):
    return [
        MembershipFactory(project=project, user__username=name, role="annotator").user
        for name in ("ann", "bob")
    ]


def judge_all(project, pair_of_annotators, ann_choices, bob_choices):
    ann, bob = pair_of_annotators
    comparisons = []
    for ann_choice, bob_choice in zip(ann_choices, bob_choices, strict=True):
        comparison = ComparisonFactory.create_pair(project=project)
        judgement(comparison, ann, ann_choice)
        judgement(comparison, bob, bob_choice)
        comparisons.append(comparison)
    return comparisons


def row_of(report, username):
    return next(row for row in report["annotators"] if row["username"] == username)


def test_kappa_alpha_and_majority_agreement_match_hand_computed_values(project, pair_of_annotators):
    judge_all(project, pair_of_annotators, ["a", "a", "b", "b"], ["a", "b", "b", "b"])
    report = project_quality_report(project=project)
    agreement = report["project"]["agreement"]
    # Observed agreement 3/4, expected (2*1 + 2*3)/16 = 1/2, so kappa = (3/4 - 1/2) / (1/2) = 1/2.
    assert agreement["mean_pairwise_kappa"] == pytest.approx(0.5)
    assert report["pairwise_kappa"] == [
        {
            "annotators": sorted(u.pk for u in pair_of_annotators),
            "items": 4,
            "kappa": pytest.approx(0.5),
            "usernames": ["ann", "bob"],
        }
    ]
    expected_alpha = krippendorff.alpha(
        reliability_data=np.array([[0, 0, 1, 1], [0, 1, 1, 1]], dtype=float), level_of_measurement="nominal"
    )
    assert agreement["krippendorff_alpha"] == pytest.approx(expected_alpha)
    # Votes on the plurality label: 2 + 0 (a split) + 2 + 2 of 8.
    assert agreement["majority_agreement"] == pytest.approx(0.75)
    assert row_of(report, "ann")["kappa_mean"] == pytest.approx(0.5)


def test_leave_one_out_majority_scores_the_odd_one_out(project, pair_of_annotators):
    cat, dan = (MembershipFactory(project=project, user__username=name).user for name in ("cat", "dan"))
    comparisons = judge_all(project, pair_of_annotators, ["a", "b"], ["a", "b"])
    for comparison, (cat_choice, dan_choice) in zip(comparisons, [("b", "a"), ("a", "b")], strict=True):
        judgement(comparison, cat, cat_choice)
        judgement(comparison, dan, dan_choice)
    report = project_quality_report(project=project)
    assert row_of(report, "cat")["majority_agreement"] == 0.0
    assert row_of(report, "ann")["majority_agreement"] == 1.0


def test_alpha_without_an_annotator_rises_when_they_are_the_one_who_disagrees(project, pair_of_annotators):
    cat = MembershipFactory(project=project, user__username="cat").user
    comparisons = judge_all(project, pair_of_annotators, ["a", "b", "a", "b"], ["a", "b", "a", "b"])
    for comparison, choice in zip(comparisons, ["b", "a", "b", "a"], strict=True):
        judgement(comparison, cat, choice)
    report = project_quality_report(project=project)
    alpha = report["project"]["agreement"]["krippendorff_alpha"]
    assert row_of(report, "cat")["alpha_without"] == pytest.approx(1.0)
    assert row_of(report, "ann")["alpha_without"] < alpha < 1.0
    expected = krippendorff.alpha(
        reliability_data=np.array([[0, 1, 0, 1], [1, 0, 1, 0]], dtype=float), level_of_measurement="nominal"
    )
    assert row_of(report, "ann")["alpha_without"] == pytest.approx(expected)


def test_position_bias_counts_left_choices_with_a_binomial_test(project, pair_of_annotators):
    ann, _ = pair_of_annotators
    for i in range(10):
        comparison = ComparisonFactory.create_pair(project=project)
        side = "a" if i % 2 else "b"
        judgement(comparison, ann, side, left=side)  # always the response shown on the left
    row = row_of(project_quality_report(project=project), "ann")
    assert row["left_rate"] == 1.0
    assert row["left_p"] == pytest.approx(2 * 0.5**10)


def test_length_bias_counts_how_often_the_longer_response_wins(project, pair_of_annotators):
    ann, _ = pair_of_annotators
    for choice in ("a", "a", "a", "b"):
        comparison = ComparisonFactory.create_pair(project=project, texts=("a much longer answer", "short"))
        judgement(comparison, ann, choice)
    bias = project_quality_report(project=project)["project"]["bias"]
    assert bias["longer_rate"] == 0.75
    assert bias["mean_length_gap"] == pytest.approx((15 * 3 - 15) / 4)
    assert 0 < bias["longer_p"] <= 1


def test_fast_tie_and_both_bad_rates(project, pair_of_annotators):
    ann, _ = pair_of_annotators
    for choice, duration in (("tie", 500), ("both_bad", 800), ("a", 9000), ("b", None)):
        judgement(ComparisonFactory.create_pair(project=project), ann, choice, duration_ms=duration)
    report = project_quality_report(project=project, fast_ms=1000)
    row = row_of(report, "ann")
    assert (row["tie_rate"], row["both_bad_rate"]) == (0.25, 0.25)
    assert row["fast_rate"] == pytest.approx(2 / 3)  # of the three timed judgements
    assert report["project"]["bias"]["fast_ms"] == 1000


def test_progress_counts_judgements_per_day_and_in_total(project, pair_of_annotators):
    judge_all(project, pair_of_annotators, ["a", "b"], ["a", "a"])
    first = Judgement.objects.order_by("id")[:2]
    Judgement.objects.filter(pk__in=[j.pk for j in first]).update(
        created_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    )
    progress = project_quality_report(project=project)["progress"]
    assert progress[0] == {"date": "2025-03-01", "judgements": 2, "cumulative": 2}
    assert progress[-1]["cumulative"] == 4


def test_an_empty_project_reports_nothing_rather_than_failing(project):
    report = project_quality_report(project=project)
    assert report["project"]["judgements"] == 0
    assert report["project"]["agreement"]["krippendorff_alpha"] is None
    assert report["annotators"] == []


def test_kappa_is_undefined_when_both_raters_use_one_label():
    assert cohen_kappa({("a", "a"): 3}) is None
    assert cohen_kappa({}) is None


def test_alpha_needs_two_units_with_overlap():
    assert krippendorff_alpha([{"a": 2}]) is None
    assert krippendorff_alpha([{"a": 1}, {"b": 1}]) is None


def test_plurality_calls_a_shared_top_a_split():
    assert plurality({"a": 1.0, "b": 1.0}) is None
    assert plurality({"a": 0.9, "b": 0.4, "tie": 0.4}) == "a"
    assert plurality({}) is None
