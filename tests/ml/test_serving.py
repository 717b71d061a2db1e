import math

import pytest

from tests.ml.tiny_models import save_tiny_causal_lm, save_tiny_encoder
from training.ml.data import PreferenceExample
from training.ml.serving import RewardScorer, ScoringError, resolve_checkpoint

PROMPT = [{"role": "user", "content": "Say something kind."}]
PAIRS = [
    PreferenceExample(PROMPT, "You are doing great!", "Go away."),
    PreferenceExample("Greet me", "Hello, friend.", "No."),
    PreferenceExample(PROMPT, "Have a lovely day.", "Whatever."),
    PreferenceExample("Thank me", "Thank you so much!", "Meh."),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.ml.api import run_training

    base = save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))
    out = tmp_path_factory.mktemp("run")
    config = {"model": str(base), "max_length": 64, "batch_size": 2, "max_steps": 2, "device": "cpu"}
    result = run_training("reward_model", config, PAIRS, output_dir=out)
    return out, result.checkpoint_dir


@pytest.fixture(scope="module")
def scorer(trained):
    return RewardScorer.load(trained[1], device="cpu")


def test_it_scores_each_response_in_the_order_given(scorer):
    scores = scorer.score(PROMPT, ["Hello!", "Go away.", "Hello!"])
    assert len(scores) == 3
    assert all(math.isfinite(s) for s in scores)
    assert scores[0] == pytest.approx(scores[2], abs=1e-5)


def test_batching_does_not_change_the_scores(scorer, monkeypatch):
    responses = ["a", "a much longer reply that needs padding", "mid length reply"]
    together = scorer.score(PROMPT, responses)
    one_by_one = [scorer.score(PROMPT, [text])[0] for text in responses]
    assert together == pytest.approx(one_by_one, abs=1e-4)


def test_no_responses_means_no_scores(scorer):
    assert scorer.score("Hi", []) == []


def test_the_pooled_vectors_are_what_the_head_turns_into_rewards(scorer):
    responses = ["Hello!", "a much longer reply that needs some padding", "Go away."]
    vectors = scorer.pooled(PROMPT, responses)
    assert vectors.shape == (3, len(scorer.head_weight)) and vectors.dtype == "float64"
    bias = float(scorer.model.head.bias)
    rewards = vectors @ scorer.head_weight + bias
    assert rewards.tolist() == pytest.approx(scorer.score(PROMPT, responses), abs=1e-4)
    assert scorer.pooled("Hi", []).shape == (0, len(scorer.head_weight))


def test_the_preference_probability_is_the_sigmoid_of_the_reward_gap(scorer):
    a, b = scorer.score("Hi", ["Hello!", "Go away."])
    p = scorer.prob_first_better("Hi", "Hello!", "Go away.")
    assert p == pytest.approx(1 / (1 + math.exp(b - a)), abs=1e-6)
    assert scorer.prob_first_better("Hi", "Go away.", "Hello!") == pytest.approx(1 - p, abs=1e-6)


def test_pairs_are_scored_together_as_they_are_one_at_a_time(scorer):
    pairs = [
        ("Hi", "Hello!", "Go away."),
        (PROMPT, "a much longer reply that needs padding", "ok"),
        ("x", "y", "y"),
    ]
    together = scorer.probs_first_better(pairs)
    assert together == pytest.approx([scorer.prob_first_better(*pair) for pair in pairs], abs=1e-6)
    assert together[2] == pytest.approx(0.5)
    assert scorer.probs_first_better([]) == []


def test_a_pairs_vectors_are_its_two_replies_pooled(scorer):
    pairs = [("Hi", "Hello!", "Go away."), ("Greet me", "Hello, dear friend.", "No.")]  # short: no cut
    vectors = scorer.pooled_pairs(pairs)
    assert vectors.shape == (2, 2, len(scorer.head_weight)) and vectors.dtype == "float64"
    for (prompt, a, b), pair_vectors in zip(pairs, vectors, strict=True):
        assert pair_vectors == pytest.approx(scorer.pooled(prompt, [a, b]), abs=1e-5)
    assert scorer.pooled_pairs([]).shape == (0, 2, len(scorer.head_weight))


def test_a_long_prompt_is_cut_the_same_for_both_replies_as_in_training(scorer):
    long_prompt = "please " * 200  # far past max_length=64
    pair = PreferenceExample(long_prompt, "a short reply", "a much much longer reply than the other one is")
    chosen, rejected = scorer.rewards_for_pairs([pair])
    p = scorer.prob_first_better(long_prompt, pair.chosen, pair.rejected)
    assert p == pytest.approx(1 / (1 + math.exp(float(rejected[0] - chosen[0]))), abs=1e-6)


def test_a_pair_that_is_not_three_parts_is_refused(scorer):
    with pytest.raises(ScoringError, match="prompt, a, b"):
        scorer.probs_first_better([("Hi", "Hello!")])
    with pytest.raises(ScoringError, match="string"):
        scorer.pooled_pairs([("Hi", "Hello!", 3)])


def test_it_evaluates_accuracy_margin_and_calibration_on_labelled_pairs(scorer):
    metrics = scorer.evaluate([*PAIRS, PreferenceExample("x", "y", "z", is_tie=True)])
    assert metrics["pairs"] == len(PAIRS)  # the tie has no right answer and is left out
    assert 0 <= metrics["accuracy"] <= 1
    assert 0 <= metrics["ece"] <= 1
    chosen, rejected = scorer.rewards_for_pairs(PAIRS)
    assert metrics["margin"] == pytest.approx((chosen - rejected).mean().item(), abs=1e-5)


def test_an_output_directory_resolves_to_its_final_checkpoint(trained):
    out, checkpoint = trained
    assert resolve_checkpoint(out) == checkpoint
    assert RewardScorer.load(out, device="cpu").source == checkpoint


@pytest.mark.parametrize(
    ("prompt", "responses", "message"),
    [
        ("Hi", "one string", "not one string"),
        ("Hi", ["ok", 3], "must be a string"),
        ([{"role": "user"}], ["ok"], "prompt must be"),
    ],
)
@pytest.mark.parametrize("method", ["score", "pooled"])
def test_it_refuses_bad_input(scorer, prompt, responses, message, method):
    with pytest.raises(ScoringError, match=message):
        getattr(scorer, method)(prompt, responses)


def test_only_ties_cannot_be_evaluated(scorer):
    with pytest.raises(ScoringError, match="no decided"):
        scorer.evaluate([PreferenceExample("x", "y", "z", is_tie=True)])


def test_a_directory_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(ScoringError, match="no complete checkpoint"):
        RewardScorer.load(tmp_path)


def test_a_plain_model_directory_is_not_a_reward_checkpoint(tmp_path):
    with pytest.raises(ScoringError, match="no complete checkpoint"):
        RewardScorer.load(save_tiny_causal_lm(tmp_path))
