"""The score_comparisons task orders the queue with the real active scorer: a tiny reward model
checkpoint, its pooled vectors and head weight, and BALD from the judgements so far."""

import pytest

from tests.factories import ComparisonFactory, judgement
from training.models import LoopSettings, ModelVersion, VersionStatus
from training.tasks import score_comparisons

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_reward_checkpoint(tmp_path_factory):
    from tests.ml.conftest import save_tiny_bert
    from training.ml.api import run_training
    from training.ml.data import PreferenceExample

    base = save_tiny_bert(tmp_path_factory.mktemp("scorer-base"))
    pairs = [
        PreferenceExample("Greet me", "Hello, friend.", "No."),
        PreferenceExample("Thank me", "Thanks!", "Meh."),
    ]
    config = {"model": str(base), "max_length": 64, "batch_size": 2, "max_steps": 1, "device": "cpu"}
    return run_training(
        "reward_model", config, pairs, output_dir=tmp_path_factory.mktemp("scorer")
    ).checkpoint_dir


def order_by_the_active_scorer(project, queue_order, checkpoint):
    """``queue_order`` None leaves the project without loop settings: its default order."""
    if queue_order is not None:
        LoopSettings.objects.create(project=project, queue_order=queue_order)
    ModelVersion.objects.create(
        project=project,
        name="rm",
        kind="reward",
        status=VersionStatus.ACTIVE_SCORER,
        checkpoint_path=str(checkpoint),
    )


@pytest.mark.parametrize("queue_order", ["informative", None], ids=["chosen", "by-default"])
def test_informative_order_writes_bald_from_the_active_scorer(
    project, annotator, tiny_reward_checkpoint, queue_order
):
    from training.ml.acquisition import bald, laplace_fit
    from training.ml.serving import RewardScorer

    order_by_the_active_scorer(project, queue_order, tiny_reward_checkpoint)
    labelled = [
        ComparisonFactory.create_pair(project=project, texts=texts, open_slots=0)
        for texts in [("kind words", "rude words"), ("thank you", "go away"), ("hello there", "no")]
    ]
    for comparison, choice in zip(labelled, "aba", strict=True):
        judgement(comparison, annotator, choice)
    pending = [
        ComparisonFactory.create_pair(project=project, texts=texts)
        for texts in [("lovely day", "whatever"), ("a long and careful answer", "meh"), ("yes", "yes!")]
    ]

    assert score_comparisons(project.pk) == 3

    scorer = RewardScorer.load(tiny_reward_checkpoint, device="cpu")

    def diff(comparison):
        texts = [slot.response.text for slot in comparison.slots.order_by("position")]
        vectors = scorer.pooled(comparison.prompt.messages, texts)
        return vectors[0] - vectors[1]

    posterior = laplace_fit([diff(c) for c in labelled], [1.0, 0.0, 1.0], scorer.head_weight)
    expected = bald(*posterior.predict([diff(c) for c in pending]))
    priorities = [type(c).objects.get(pk=c.pk).priority for c in pending]
    assert priorities == pytest.approx(expected.tolist(), abs=1e-6)
    assert all(0 <= p <= 1 for p in priorities) and max(priorities) > 0


def test_uncertainty_order_writes_how_close_each_pair_is_to_a_coin_flip(project, tiny_reward_checkpoint):
    from training.ml.serving import RewardScorer
    from training.services.active_learning import uncertainty_priority

    order_by_the_active_scorer(project, "uncertainty", tiny_reward_checkpoint)
    pending = [
        ComparisonFactory.create_pair(project=project, texts=texts)
        for texts in [("lovely day", "whatever"), ("a long and careful answer", "meh"), ("yes", "no")]
    ]

    assert score_comparisons(project.pk) == 3

    scorer = RewardScorer.load(tiny_reward_checkpoint, device="cpu")
    expected = []
    for comparison in pending:
        a, b = [slot.response.text for slot in comparison.slots.order_by("position")]
        expected.append(uncertainty_priority(scorer.prob_first_better(comparison.prompt.messages, a, b)))
    priorities = [type(c).objects.get(pk=c.pk).priority for c in pending]
    assert priorities == pytest.approx(expected, abs=1e-6)
    assert all(0 <= p <= 1 for p in priorities) and len(set(priorities)) == 3
