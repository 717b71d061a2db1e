"""rloo, ppo and soft_q on a toy task: a tiny Llama learns to say more of the GOOD words."""

import pytest
import torch

from tests.ml.conftest import GOOD, Recorder, read_weights
from training.ml import rollouts
from training.ml.api import run_rl
from training.ml.config import ConfigError, config_from_dict

PROMPTS = [
    [{"role": "user", "content": q}] for q in ["hello", "hi you", "what is it", "how", "yes no", "the a"]
]


def good_words(prompts, responses):
    """+1 per GOOD word in the response: a reward whose optimum is known."""
    return [sum(word in GOOD for word in r.split()) for r in responses]


def rl_config(model, **overrides):
    settings = {
        "model": str(model),
        "lr": 2e-2,
        "batch_size": 4,
        "k": 4,
        "max_new_tokens": 6,
        "max_length": 48,
        "max_steps": 10,
        "lora": False,
        "beta": 0.05,
        "warmup_ratio": 0.0,
        "schedule": "constant",
        "device": "cpu",
    }
    return {**settings, **overrides}


METHODS = {
    "rloo": {},
    "ppo": {"ppo_epochs": 2, "lr": 1e-2, "max_steps": 16},
    "soft_q": {"beta": 0.2, "lr": 3e-2, "max_steps": 12},
}


def mean(values):
    return sum(values) / len(values)


@pytest.mark.parametrize("method", list(METHODS))
def test_the_reward_rises_within_a_fixed_number_of_steps_while_kl_stays_bounded(method, tiny_llama, tmp_path):
    rec = Recorder()
    run_rl(
        method,
        rl_config(tiny_llama, **METHODS[method]),
        PROMPTS,
        reward_fn=good_words,
        output_dir=tmp_path / "run",
        on_log=rec,
    )
    steps = [e["metrics"] for e in rec.of("step")]
    first, last = mean([m["reward"] for m in steps[:3]]), mean([m["reward"] for m in steps[-3:]])
    assert last > first + 1.0, (method, [round(m["reward"], 2) for m in steps])
    assert max(m["kl"] for m in steps) < 12.0
    for key in ("kl", "entropy", "response_length", "advantage_mean", "advantage_std", "samples_per_second"):
        assert key in steps[-1]


def test_ppo_clips_once_the_ratio_moves_and_its_value_loss_falls_over_the_epochs(tiny_llama, tmp_path):
    rec = Recorder()
    run_rl(
        "ppo",
        rl_config(tiny_llama, ppo_epochs=4, max_steps=8, clip_range=0.1),
        PROMPTS,
        reward_fn=good_words,
        output_dir=tmp_path / "run",
        on_log=rec,
    )
    steps = [e["metrics"] for e in rec.of("step")]
    assert steps[0]["clip_fraction"] == 0.0  # the first step of a rollout is on-policy: ratio 1
    assert max(m["clip_fraction"] for m in steps[1:4]) > 0
    for rollout in (steps[0:4], steps[4:8]):  # the same samples, four passes
        assert rollout[-1]["value_loss"] < rollout[0]["value_loss"]


def test_the_reward_tensor_never_requires_grad_and_gradients_reach_the_policy(
    tiny_llama, tmp_path, monkeypatch
):
    seen = []
    original = rollouts.score

    def recording(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(rollouts, "score", recording)
    from training.ml.rl import RLTask

    for method in METHODS:
        cfg = config_from_dict(method, rl_config(tiny_llama))
        task = RLTask.build(cfg, PROMPTS, good_words)
        batch = task.batch([0, 1], torch.device("cpu"))
        assert not any(v.requires_grad for v in batch.values() if isinstance(v, torch.Tensor))
        loss, _ = task.loss(task.module, batch)
        loss.backward()
        grads = [p.grad for p in task.model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), method
    assert seen and not any(t.requires_grad for t in seen)


@pytest.mark.parametrize("method,lora", [("rloo", False), ("ppo", True)])
def test_a_stopped_run_resumes_to_the_same_weights_as_an_uninterrupted_one(
    method, lora, tiny_llama, tmp_path
):
    # ppo with 2 updates per rollout stops at step 3, in the middle of a rollout.
    extra = {"ppo_epochs": 2} if method == "ppo" else {}
    cfg = rl_config(tiny_llama, max_steps=4, lora=lora, batch_size=2, k=2, **extra)
    whole = run_rl(method, cfg, PROMPTS, reward_fn=good_words, output_dir=tmp_path / "whole")
    first = Recorder(stop_at=3)
    stopped = run_rl(method, cfg, PROMPTS, reward_fn=good_words, output_dir=tmp_path / "split", on_log=first)
    assert stopped.stopped and stopped.steps == 3
    second = Recorder()
    resumed = run_rl(method, cfg, PROMPTS, reward_fn=good_words, output_dir=tmp_path / "split", on_log=second)
    assert [e["step"] for e in second.of("step")] == [4]
    a, b = read_weights(whole.checkpoint_dir), read_weights(resumed.checkpoint_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_cancel_stops_after_one_rollout(tiny_llama, tmp_path, monkeypatch):
    calls = []
    original = rollouts.sample

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(rollouts, "sample", counting)
    result = run_rl(
        "rloo",
        rl_config(tiny_llama),
        PROMPTS,
        reward_fn=good_words,
        output_dir=tmp_path / "run",
        on_log=lambda event: event["event"] == "step",
    )
    assert result.stopped and result.steps == 1
    assert len(calls) == 1


def test_lora_reads_the_reference_with_its_adapter_off_so_kl_starts_at_zero(tiny_llama, tmp_path):
    from training.ml.rl import RLTask

    cfg = config_from_dict("rloo", rl_config(tiny_llama, lora=True))
    task = RLTask.build(cfg, PROMPTS, good_words)
    assert task.ref_lm is None  # no second copy of the model
    task.batch([0, 1], torch.device("cpu"))
    assert task.buffer["stats"]["kl"] == pytest.approx(0.0, abs=1e-5)
    # Move the adapter: the policy now differs from its reference.
    for name, p in task.model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    task.used = task.updates
    task.batch([0, 1], torch.device("cpu"))
    assert task.buffer["stats"]["kl"] != pytest.approx(0.0, abs=1e-3)


def test_configs_refuse_what_the_methods_cannot_use():
    with pytest.raises(ConfigError, match="k >= 2"):
        config_from_dict("rloo", {"model": "m", "k": 1})
    with pytest.raises(ConfigError, match="num_minibatches"):
        config_from_dict("ppo", {"model": "m", "batch_size": 2, "k": 1, "num_minibatches": 3})
    with pytest.raises(ConfigError, match="beta"):
        config_from_dict("soft_q", {"model": "m", "beta": 0.0})
    assert config_from_dict("ppo", {"model": "m"}).lora is True  # LoRA unless asked otherwise


def test_responses_cut_at_the_limit_pay_the_penalty_and_whitening_centres_the_scores(tiny_llama):
    from training.ml.rl import RLTask

    # soft_q keeps each response's score at its last token: the shaped reward is visible there.
    cfg = config_from_dict("soft_q", rl_config(tiny_llama, max_new_tokens=3, missing_eos_penalty=2.0))
    task = RLTask.build(cfg, PROMPTS, lambda p, r: [1.0] * len(r))
    task.batch([0, 1, 2, 3], torch.device("cpu"))
    responses = task.buffer["input_ids"][:, int(task.buffer["prompt_width"]) :]
    scores, truncated = task.buffer["rewards"].sum(1), ~(responses == task.eos).any(1)
    assert truncated.any()
    assert scores.tolist() == [-1.0 if cut else 1.0 for cut in truncated.tolist()]
    cfg = config_from_dict("soft_q", rl_config(tiny_llama, whiten_rewards=True))
    task = RLTask.build(cfg, PROMPTS, lambda p, r: [float(len(x)) for x in r])
    task.batch([0, 1, 2, 3], torch.device("cpu"))
    whitened = task.buffer["rewards"].sum(1)
    assert whitened.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert whitened.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-3)


def test_the_adaptive_kl_coefficient_falls_while_kl_is_under_its_target(tiny_llama, tmp_path):
    rec = Recorder()
    cfg = rl_config(tiny_llama, max_steps=2, ppo_epochs=1, adaptive_kl=True, target_kl=6.0, kl_horizon=16)
    run_rl("ppo", cfg, PROMPTS, reward_fn=good_words, output_dir=tmp_path / "run", on_log=rec)
    coefs = [e["metrics"]["kl_coef"] for e in rec.of("step")]
    # The first rollout's KL is 0 (the policy is its reference): beta moves down by the full 20%
    # for 16 samples over a horizon of 16, and logs the value the step's rewards were shaped with.
    assert coefs == pytest.approx([0.05, 0.04])


def test_run_training_points_rl_kinds_to_run_rl(tiny_llama, tmp_path):
    from training.ml.api import run_training

    with pytest.raises(ConfigError, match="run_rl"):
        run_training("rloo", rl_config(tiny_llama), [], output_dir=tmp_path)
