"""The active scorer orders the annotation queue: most uncertain or most informative first, or random."""

import pytest

from tests.factories import ComparisonFactory
from training.models import LoopSettings
from training.services.active_learning import comparisons_prioritise, uncertainty_priority

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("p, priority", [(0.5, 1.0), (0.0, 0.0), (1.0, 0.0), (0.75, 0.5), (0.1, 0.2)])
def test_uncertainty_is_one_minus_twice_the_distance_from_a_coin_flip(p, priority):
    assert uncertainty_priority(p) == pytest.approx(priority)


def test_the_most_uncertain_comparison_gets_the_highest_priority(project):
    sure = ComparisonFactory.create_pair(project=project, texts=("great", "awful"))
    unsure = ComparisonFactory.create_pair(project=project, texts=("fine", "okay"))
    done = ComparisonFactory.create_pair(project=project, texts=("x", "y"), open_slots=0)
    gold = ComparisonFactory.create_pair(project=project, texts=("g", "h"), is_gold=True, gold_choice="a")
    scorer = FakeScorer(probabilities={"great": 0.95, "fine": 0.55})

    updated = comparisons_prioritise(project=project, scorer=scorer, order="uncertainty")
    assert updated == 2
    assert scorer.pairs_per_call == [2]  # both pending pairs in one call: the scorer batches them
    for c in (sure, unsure, done, gold):
        c.refresh_from_db()
    assert unsure.priority == pytest.approx(0.9) and sure.priority == pytest.approx(0.1)
    assert done.priority == 0.0 and gold.priority == 0.0


def test_random_order_is_the_project_setting_and_needs_no_scorer(project):
    LoopSettings.objects.create(project=project, queue_order="random")
    comparisons = [ComparisonFactory.create_pair(project=project, texts=(f"a{i}", f"b{i}")) for i in range(5)]
    comparisons_prioritise(project=project, scorer=FakeScorer(), seed=1)  # never asked
    priorities = [c.priority for c in (type(c).objects.get(pk=c.pk) for c in comparisons)]
    assert len(set(priorities)) == 5 and all(0 <= p < 1 for p in priorities)


class FakeScorer:
    """Known P(A > B) per text of A, or known pooled vectors per response text and a head weight:
    what the test can compute. Records how many pairs each call got."""

    def __init__(self, vectors: dict[str, list[float]] | None = None, head_weight=(), probabilities=None):
        import numpy as np

        self.vectors = {text: np.asarray(v, dtype=float) for text, v in (vectors or {}).items()}
        self.head_weight = np.asarray(head_weight, dtype=float)
        self.probabilities = probabilities or {}
        self.pairs_per_call = []

    def probs_first_better(self, pairs):
        self.pairs_per_call.append(len(pairs))
        return [self.probabilities[a] for _, a, _ in pairs]

    def pooled_pairs(self, pairs):
        import numpy as np

        self.pairs_per_call.append(len(pairs))
        return np.stack([np.stack([self.vectors[a], self.vectors[b]]) for _, a, b in pairs])


def test_the_most_informative_comparison_gets_the_highest_priority(project, annotator, researcher):
    import numpy as np

    from tests.factories import judgement
    from training.ml.acquisition import bald, laplace_fit

    vectors = {
        "l1a": [1.0, 0.0, 0.0],
        "l1b": [0.0, 0.0, 0.0],  # labelled along the first axis only
        "l2a": [0.0, 0.0, 0.0],
        "l2b": [2.0, 0.0, 0.0],
        "l3a": [1.5, 0.2, 0.0],
        "l3b": [0.0, 0.0, 0.0],
        "tie-a": [0.0, 0.0, 9.0],
        "tie-b": [0.0, 0.0, 0.0],  # a tie teaches nothing: left out
        "p1a": [0.0, 1.0, 0.0],
        "p1b": [0.0, 0.0, 0.0],  # an unlabelled axis, near a coin flip
        "p2a": [0.3, 0.0, 0.0],
        "p2b": [0.0, 0.0, 0.0],  # well explored
        "p3a": [0.0, 0.0, 3.0],
        "p3b": [0.0, 0.0, 0.0],  # a sure call by w, yet its axis was never labelled
    }
    weight = [0.5, 0.1, 2.0]
    labelled = [
        (ComparisonFactory.create_pair(project=project, texts=("l1a", "l1b"), open_slots=0), "a"),
        (ComparisonFactory.create_pair(project=project, texts=("l2a", "l2b"), open_slots=0), "b"),
        (ComparisonFactory.create_pair(project=project, texts=("l3a", "l3b"), open_slots=0), "b"),
    ]
    for comparison, choice in labelled:
        judgement(comparison, annotator, choice)
    judgement(labelled[0][0], researcher, "b")  # a second vote on the same pair counts as well
    tie = ComparisonFactory.create_pair(project=project, texts=("tie-a", "tie-b"), open_slots=0)
    judgement(tie, annotator, "tie")
    pending = [ComparisonFactory.create_pair(project=project, texts=(f"p{i}a", f"p{i}b")) for i in (1, 2, 3)]

    scorer = FakeScorer(vectors, weight)
    assert comparisons_prioritise(project=project, scorer=scorer, order="informative") == 3

    diffs = np.array([[1.0, 0, 0], [-2.0, 0, 0], [1.5, 0.2, 0], [1.0, 0, 0]])
    posterior = laplace_fit(diffs, [1.0, 0.0, 0.0, 0.0], weight)
    expected = bald(*posterior.predict(np.array([[0, 1.0, 0], [0.3, 0, 0], [0, 0, 3.0]])))
    priorities = [type(c).objects.get(pk=c.pk).priority for c in pending]
    assert priorities == pytest.approx(expected.tolist())
    # An explored direction ranks last, a coin flip or not: its label would barely move the weights.
    assert min(priorities[0], priorities[2]) > priorities[1] and all(0 <= p <= 1 for p in priorities)
    # Each labelled pair once however many votes, then the pending ones: one batched call each.
    assert scorer.pairs_per_call == [3, 3]


def test_labelled_pairs_are_the_most_recent_decided_votes_on_two_response_comparisons(project, annotator):
    from annotation.models import ComparisonResponse
    from tests.factories import ResponseFactory, judgement
    from training.services.active_learning import labelled_pairs

    first = ComparisonFactory.create_pair(project=project, texts=("a", "b"))
    second = ComparisonFactory.create_pair(project=project, texts=("c", "d"))
    both_bad = ComparisonFactory.create_pair(project=project, texts=("e", "f"))
    three = ComparisonFactory.create_pair(project=project, texts=("g", "h"))
    ComparisonResponse.objects.create(
        comparison=three, response=ResponseFactory(prompt=three.prompt, text="i"), position=2
    )
    judgement(first, annotator, "a")
    judgement(second, annotator, "b")
    judgement(both_bad, annotator, "both_bad")
    judgement(three, annotator, "a")
    assert labelled_pairs(project=project) == [(second.pk, 0.0), (first.pk, 1.0)]
    assert labelled_pairs(project=project, limit=1) == [(second.pk, 0.0)]


def test_informative_order_without_an_active_scorer_is_random(project):
    LoopSettings.objects.create(project=project, queue_order="informative")
    comparisons = [ComparisonFactory.create_pair(project=project, texts=(f"a{i}", f"b{i}")) for i in range(5)]
    assert comparisons_prioritise(project=project, seed=1) == 5
    priorities = [c.priority for c in (type(c).objects.get(pk=c.pk) for c in comparisons)]
    assert len(set(priorities)) == 5 and all(0 <= p < 1 for p in priorities)
