"""Exports and training snapshots select votes through the same functions: the same votes (gold
items, imported labels, ties, splits, both-bad, flagged and untested annotators) give the same
comparisons and the same labels whichever way a researcher takes them out."""

from collections import Counter

import pytest
from django.db import transaction

from annotation.models import Comparison, Judgement
from annotation.quality.gold import GOLD_MIN_JUDGEMENTS, annotators_flagged
from annotation.services.exports import ExportOptions, export_pairs
from tests.factories import ComparisonFactory, MembershipFactory, judgement
from training.services.snapshots import snapshot_create, snapshot_examples

pytestmark = pytest.mark.django_db


@pytest.fixture
def votes(project):
    ann, bob, carl, nina = (
        MembershipFactory(project=project, user__username=name, role="annotator").user
        for name in ("ann", "bob", "carl", "nina")
    )
    project.gold_accuracy_threshold = 0.6
    project.save()
    for who, answer, items in (
        (ann, "a", GOLD_MIN_JUDGEMENTS),
        (bob, "a", GOLD_MIN_JUDGEMENTS),
        (carl, "b", GOLD_MIN_JUDGEMENTS),  # flagged: wrong on every gold item
        (nina, "a", GOLD_MIN_JUDGEMENTS - 1),  # untested: right, but on too few items to say
    ):
        for _ in range(items):
            judgement(
                ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a"), who, answer
            )

    def pair(name, *cast, prior=""):
        comparison = ComparisonFactory.create_pair(
            project=project,
            texts=(f"{name} A", f"{name} B"),
            prior_choice=prior,
            prior_source="hh" if prior else "",
        )
        for who, choice in cast:
            judgement(comparison, who, choice, left="b" if who is bob else "a")
        return comparison

    pair("agreed", (ann, "a"), (bob, "a"), (nina, "b"))
    pair("split", (ann, "a"), (bob, "b"))
    pair("imported-decides", (ann, "b"), (bob, "a"), prior="b")  # 2/3 with the imported label, 1/2 without
    pair("imported-only", prior="a")
    pair("flagged-disagrees", (carl, "a"), (ann, "b"))
    pair("ties", (ann, "tie"), (bob, "tie"))
    pair("both-bad", (ann, "both_bad"), (bob, "a"))
    return {"ann": ann, "bob": bob, "carl": carl, "nina": nina}


def through_export(project, **options) -> tuple[dict, set, dict]:
    """({judgement id: choice} of pairwise votes, comparisons labelled by their imported label
    alone, {comparison id: label}) of an export."""
    with transaction.atomic():
        pairs = list(export_pairs(project=project, options=ExportOptions(format="votes", **options)))
    choices = {
        v.judgement_id: v.choice for p in pairs for v in p.votes if v.judgement_id and v.choice != "both_bad"
    }
    prior_only = {p.comparison_id for p in pairs if all(v.imported for v in p.votes)}
    return choices, prior_only, {p.comparison_id: p.label for p in pairs}


def through_snapshot(project, **filters) -> tuple[dict, set, list]:
    snapshot = snapshot_create(project=project, filters={"eval_fraction": 0, **filters})
    choices = dict(Judgement.objects.filter(pk__in=snapshot.judgement_ids).values_list("id", "choice"))
    train, _ = snapshot_examples(snapshot=snapshot)
    return choices, set(snapshot.prior_comparison_ids), train


@pytest.mark.parametrize(
    "export_options, snapshot_filters",
    [
        ({"include_imported": False}, {}),
        ({"include_imported": True}, {"include_prior_labels": True}),
        (
            {"include_imported": True, "min_agreement": 0.6},
            {"include_prior_labels": True, "min_agreement": 0.6},
        ),
        ({"include_imported": False, "min_agreement": 0.6}, {"min_agreement": 0.6}),
        ({"include_imported": False, "min_agreement": 1.0}, {"min_agreement": 1.0}),
    ],
)
def test_an_export_and_a_snapshot_of_the_same_filters_keep_the_same_votes(
    project, votes, export_options, snapshot_filters
):
    exported, exported_priors, _ = through_export(project, **export_options)
    snapshotted, snapshot_priors, train = through_snapshot(project, **snapshot_filters)
    assert snapshotted == exported
    assert snapshot_priors == exported_priors
    assert len(train) == len(snapshotted) + len(snapshot_priors)


def test_the_imported_label_that_keeps_a_comparison_in_an_export_keeps_it_in_a_run(project, votes):
    decided = Comparison.objects.get(slots__response__text="imported-decides A")
    exported, _, labels = through_export(project, include_imported=True, min_agreement=0.6)
    snapshotted, _, _ = through_snapshot(project, include_prior_labels=True, min_agreement=0.6)
    assert labels[decided.pk] == "b"
    assert set(decided.judgements.values_list("id", flat=True)) <= set(snapshotted) == set(exported)


def test_gold_trust_is_one_rule_for_exports_and_runs(project, votes):
    assert annotators_flagged(project=project) == {votes["carl"].pk}
    flagged_out, _, _ = through_export(project, include_imported=False, exclude_flagged=True)
    trusted_only, _, _ = through_snapshot(project, gold_checked_only=True)
    voters = dict(Judgement.objects.values_list("id", "annotator__username"))
    # The export leaves out the flagged annotator and keeps the untested one; the run keeps
    # only annotators gold items vouch for. Same verdicts, named difference: untested or not.
    assert {voters[pk] for pk in flagged_out} == {"ann", "bob", "nina"}
    assert {voters[pk] for pk in trusted_only} == {"ann", "bob"}
    trusted_export, _, _ = through_export(project, include_imported=False, annotators=("ann", "bob"))
    assert trusted_only == trusted_export


def test_labels_and_examples_say_the_same_about_each_comparison(project, votes):
    exported, _, labels = through_export(project, include_imported=True)
    _, _, train = through_snapshot(project, include_prior_labels=True)
    names = {
        c.pk: c.slots.get(position=0).response.text.removesuffix(" A")
        for c in Comparison.objects.filter(project=project, is_gold=False)
    }
    assert {names[c]: label for c, label in labels.items() if c in names} == {
        "agreed": "a",
        "split": None,
        "imported-decides": "b",
        "imported-only": "a",
        "flagged-disagrees": None,
        "ties": "tie",
        "both-bad": None,
    }
    # One training example per pairwise vote (and per imported label that stands alone), each
    # preferring the side its vote chose.
    by_vote = Counter()
    for pk, choice in exported.items():
        comparison = Judgement.objects.get(pk=pk).comparison_id
        by_vote[(names.get(comparison, "gold"), choice)] += 1
    by_vote[("imported-only", "a")] += 1
    by_example = Counter()
    for example in train:
        name, _, side = example["chosen"].rpartition(" ")
        choice = "tie" if example["is_tie"] else side.lower()
        by_example[(name if name in names.values() else "gold", choice)] += 1
    assert by_example == by_vote
