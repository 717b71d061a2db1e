import pytest
import torch

from tests.ml.conftest import save_tiny_llama
from tests.ml.tiny_models import save_tiny_causal_lm, save_tiny_encoder
from training.ml.data import PreferenceExample
from training.ml.version_eval import EvalSettings, evaluate_policy

PROMPTS = [
    [{"role": "user", "content": "Say something kind."}],
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "tell me a story"}],
    "Greet me",
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "user", "content": "Name a colour."}],
]
SHORT = EvalSettings(max_new_tokens=12, batch_size=4, bootstrap_rounds=200, max_prompt_tokens=64)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from training.ml.api import run_training

    root = tmp_path_factory.mktemp("version-eval")
    policy = save_tiny_causal_lm(root / "policy", seed=0)
    other = save_tiny_causal_lm(root / "other", seed=1)
    encoder = save_tiny_encoder(root / "encoder")
    pairs = [
        PreferenceExample(PROMPTS[0], "You are doing great!", "Go away."),
        PreferenceExample("Greet me", "Hello, friend.", "No."),
    ]
    config = {"model": str(encoder), "max_length": 64, "batch_size": 2, "max_steps": 2, "device": "cpu"}
    judge = run_training("reward_model", config, pairs, output_dir=root / "judge").checkpoint_dir
    return {"policy": policy, "other": other, "judge": judge}


def evaluate(models, policy="policy", opponent="policy", settings=SHORT, **kwargs):
    return evaluate_policy(
        policy=models[policy],
        opponent=models[opponent],
        judge=models["judge"],
        prompts=PROMPTS,
        settings=settings,
        device="cpu",
        **kwargs,
    )


def test_a_policy_against_itself_ties_everywhere_and_drifts_nowhere(models):
    result = evaluate(models)
    assert result.win_rate == 0.5 and (result.ci_low, result.ci_high) == (0.5, 0.5)
    assert (result.wins, result.ties, result.losses, result.n_prompts) == (0, 6, 0, 6)
    assert result.mean_kl == pytest.approx(0.0, abs=1e-6)
    assert result.mean_length_policy == result.mean_length_opponent
    assert 1 <= result.mean_length_policy <= SHORT.max_new_tokens


def test_the_same_seed_gives_the_same_result_and_another_seed_another(models):
    first = evaluate(models, opponent="other")
    assert evaluate(models, opponent="other") == first
    reseeded = evaluate(models, opponent="other", settings=EvalSettings(**{**SHORT.to_dict(), "seed": 5}))
    assert reseeded != first
    assert sum(first.outcomes) / 6 == first.win_rate
    assert first.ci_low <= first.win_rate <= first.ci_high


def test_the_kl_is_to_the_reference_and_positive_against_another_model(models):
    drift = evaluate(models, opponent="other")
    assert drift.mean_kl > 0.01
    anchored = evaluate(models, opponent="other", reference=models["policy"])
    assert anchored.mean_kl == pytest.approx(0.0, abs=1e-6)
    assert anchored.outcomes == drift.outcomes  # the opponent's answers do not depend on the reference


def test_greedy_decoding_does_not_depend_on_the_seed(models):
    greedy = EvalSettings(**{**SHORT.to_dict(), "temperature": 0})
    a = evaluate(models, opponent="other", settings=greedy)
    b = evaluate(models, opponent="other", settings=EvalSettings(**{**greedy.to_dict(), "seed": 9}))
    assert (a.outcomes, a.mean_kl, a.mean_length_policy) == (b.outcomes, b.mean_kl, b.mean_length_policy)


def test_it_leaves_the_callers_random_state_alone(models):
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    evaluate(models)
    assert torch.equal(torch.rand(2), expected)


def test_it_refuses_no_prompts_a_reference_with_another_tokenizer_and_bad_settings(models, tmp_path):
    with pytest.raises(ValueError, match="no prompts"):
        evaluate_policy(policy=models["policy"], opponent=models["policy"], judge=models["judge"], prompts=[])
    with pytest.raises(ValueError, match="tokenizers"):
        evaluate(models, reference=save_tiny_llama(tmp_path / "word-level"))
    with pytest.raises(ValueError, match="temperature"):
        EvalSettings(temperature=-1)
    with pytest.raises(ValueError, match="Unknown"):
        EvalSettings.from_dict({"beam": 3})
    assert EvalSettings.from_dict(SHORT.to_dict()) == SHORT
