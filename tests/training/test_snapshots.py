"""Data snapshots record exactly which votes a run trains on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Judgement
from annotation.quality.gold import GOLD_MIN_JUDGEMENTS
from annotation.services.errors import ValidationFailed
from tests.factories import ComparisonFactory
from tests.training.helpers import judge, judged_pairs, member
from training.services.snapshots import snapshot_create, snapshot_examples

pytestmark = pytest.mark.django_db


def test_it_records_the_ids_of_the_votes_and_a_stable_hash(project, annotator):
    judged_pairs(project, annotator, 3)
    first = snapshot_create(project=project)
    second = snapshot_create(project=project)
    assert first.judgement_ids == sorted(Judgement.objects.values_list("id", flat=True))
    assert first.sha256 == second.sha256 and len(first.sha256) == 64


def test_a_new_vote_changes_the_hash(project, annotator):
    judged_pairs(project, annotator, 2)
    before = snapshot_create(project=project)
    judged_pairs(project, annotator, 1)
    assert snapshot_create(project=project).sha256 != before.sha256


def test_it_leaves_out_both_bad_votes_and_held_back_prompts(project, annotator):
    judged_pairs(project, annotator, 2)
    judged_pairs(project, annotator, 1, choice="both_bad")
    judged_pairs(project, annotator, 1, held_back=True)
    assert snapshot_create(project=project).judgement_count == 2


def test_gold_checked_only_keeps_annotators_gold_items_vouch_for(project, annotator):
    careless, newcomer = member(project, "carl"), member(project, "nina")
    for who, answer, items in (
        (annotator, "a", GOLD_MIN_JUDGEMENTS),
        (careless, "b", GOLD_MIN_JUDGEMENTS),
        (newcomer, "a", GOLD_MIN_JUDGEMENTS - 1),  # right so far, but too few items to say
    ):
        for _ in range(items):
            judge(ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a"), who, answer)
        judged_pairs(project, who, 2)
    snapshot = snapshot_create(project=project, filters={"gold_checked_only": True})
    voters = set(Judgement.objects.filter(pk__in=snapshot.judgement_ids).values_list("annotator", flat=True))
    assert voters == {annotator.pk}


def test_min_agreement_keeps_comparisons_whose_majority_is_large_enough(project, annotator):
    other = member(project, "otto")
    agreed, split = judged_pairs(project, annotator, 2)
    judge(agreed, other, "a")
    judge(split, other, "b")
    snapshot = snapshot_create(project=project, filters={"min_agreement": 0.75})
    kept = set(Judgement.objects.filter(pk__in=snapshot.judgement_ids).values_list("comparison", flat=True))
    assert kept == {agreed.pk}


def test_a_date_range_filters_by_judgement_time(project, annotator):
    old, new = judged_pairs(project, annotator, 2)
    Judgement.objects.filter(comparison=old).update(created_at=timezone.now() - timedelta(days=10))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    snapshot = snapshot_create(project=project, filters={"since": since})
    assert snapshot.judgement_ids == [new.judgements.get().pk]


def test_imported_labels_are_used_only_when_asked(project):
    ComparisonFactory.create_pair(project=project, prior_choice="b", prior_source="hh")
    with pytest.raises(ValidationFailed, match="No votes"):
        snapshot_create(project=project)
    snapshot = snapshot_create(project=project, filters={"include_prior_labels": True})
    train, _ = snapshot_examples(snapshot=snapshot)
    assert (train[0]["chosen"], train[0]["rejected"]) == ("Response B", "Response A")


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"colour": "red"}, "Unknown snapshot filters: colour"),
        ({"min_agreement": 2}, "min_agreement"),
        ({"since": "yesterday"}, "ISO 8601"),
        ({"gold_checked_only": "yes"}, "true or false"),
    ],
)
def test_it_refuses_bad_filters(project, annotator, filters, message):
    judged_pairs(project, annotator, 1)
    with pytest.raises(ValidationFailed, match=message):
        snapshot_create(project=project, filters=filters)


def test_examples_follow_the_choice_and_mark_ties_with_a_margin_from_strength(project, annotator):
    a_wins, b_wins, tie = (
        ComparisonFactory.create_pair(project=project, texts=(f"A{i}", f"B{i}")) for i in range(3)
    )
    judge(a_wins, annotator, "a", strength=2)
    judge(b_wins, annotator, "b")
    judge(tie, annotator, "tie")
    train, evaluation = snapshot_examples(snapshot=snapshot_create(project=project))
    assert evaluation == []  # too few comparisons to hold some out
    by_prompt = {(e["chosen"], e["rejected"]): e for e in train}
    assert by_prompt[("A0", "B0")]["margin"] == 1.0  # strongest of 3 strengths
    assert ("B1", "A1") in by_prompt and by_prompt[("A2", "B2")]["is_tie"]
    assert by_prompt[("A0", "B0")]["prompt"] == a_wins.prompt.messages
    assert by_prompt[("A0", "B0")]["annotator_id"] == str(annotator.pk)


def test_evaluation_examples_are_held_out_by_comparison(project, annotator):
    other = member(project, "otto")
    comparisons = judged_pairs(project, annotator, 30)
    for comparison in comparisons:
        judge(comparison, other, "a")
    train, evaluation = snapshot_examples(snapshot=snapshot_create(project=project))
    assert len(evaluation) == 6 and len(train) == 54  # 3 of 30 comparisons, both votes each
    assert not {e["chosen"] for e in train} & {e["chosen"] for e in evaluation}


def test_max_examples_keeps_the_newest_votes_then_the_newest_imported_labels(project, annotator):
    _older, newer = judged_pairs(project, annotator, 2)
    imported = [ComparisonFactory.create_pair(project=project, prior_choice="a") for _ in range(3)]
    only_votes = snapshot_create(project=project, filters={"max_examples": 1, "include_prior_labels": True})
    assert only_votes.judgement_ids == [newer.judgements.get().pk] and only_votes.prior_comparison_ids == []
    mixed = snapshot_create(project=project, filters={"max_examples": 4, "include_prior_labels": True})
    assert mixed.judgement_count == 2 and mixed.prior_comparison_ids == [imported[1].pk, imported[2].pk]
    with pytest.raises(ValidationFailed, match="max_examples"):
        snapshot_create(project=project, filters={"max_examples": 0})
