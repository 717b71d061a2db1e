import math

import pytest
import torch

from tests.ml.conftest import Recorder, read_weights, toy_pairs
from tests.ml.test_trainer import ZERO_GRADIENT
from training.ml.api import run_training
from training.ml.reward import RewardModel, RewardTask, pairwise_metrics


def reward_config(model, **overrides):
    return {"model": str(model), "lr": 2e-3, "batch_size": 8, "epochs": 2, "max_length": 32, **overrides}


def test_pairwise_metrics_match_a_hand_count():
    chosen = torch.tensor([2.0, 0.0, 1.0, 0.0])
    rejected = torch.tensor([0.0, 2.0, 1.0, 0.0])
    m = pairwise_metrics(chosen, rejected, bins=5)
    assert m["accuracy"] == pytest.approx((1 + 0 + 0.5 + 0.5) / 4)
    assert m["margin"] == pytest.approx(0.0)
    # confidences: s(2)=0.881 right, 0.881 wrong, 0.5 half right, 0.5 half right
    conf = 1 / (1 + math.exp(-2))
    expected = 0.5 * abs(0.5 - conf) + 0.5 * abs(0.5 - 0.5)
    assert m["ece"] == pytest.approx(expected, rel=1e-6)
    assert m["pairs"] == 4


def test_an_encoder_reward_model_learns_toy_preferences(tiny_bert, tmp_path):
    rec = Recorder()
    before = RewardModel.from_pretrained(tiny_bert).state_dict()
    result = run_training(
        "reward_model",
        reward_config(tiny_bert, eval_every=4),
        toy_pairs(64),
        eval_examples=toy_pairs(16, seed=1),
        output_dir=tmp_path / "run",
        on_log=rec,
    )
    losses = rec.losses()
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1
    assert result.metrics["accuracy"] >= 0.8
    after = read_weights(result.checkpoint_dir)
    assert not torch.equal(
        after["backbone.encoder.layer.0.attention.self.query.weight"],
        before["backbone.encoder.layer.0.attention.self.query.weight"],
    )
    assert {e["step"] for e in rec.of("eval")} >= {4, 8}
    step = rec.of("step")[0]
    assert {"step", "total_steps", "epoch", "loss", "lr", "eta_seconds", "metrics"} <= set(step)


def test_chosen_and_rejected_share_one_forward_pass(tiny_bert):
    from training.ml.config import config_from_dict

    cfg = config_from_dict("reward_model", reward_config(tiny_bert, split_by_length=False))
    task = RewardTask.build(cfg, toy_pairs(4), None)
    calls = []
    task.model.backbone.register_forward_hook(lambda mod, args, kwargs_out: calls.append(1))
    batch = task.batch([0, 1, 2, 3], torch.device("cpu"))
    task.loss(task.module, batch)
    assert len(calls) == 1
    assert batch["input_ids"].shape[0] == 8
    # Dynamic padding: the batch is as wide as its longest sequence, not max_length.
    assert batch["input_ids"].shape[1] == max(
        max(len(task.train.chosen[i]), len(task.train.rejected[i])) for i in range(4)
    )


def rewards_and_gradients(model, ids, mask):
    model.zero_grad(set_to_none=True)
    rewards = model(ids, mask)
    (rewards * torch.arange(1.0, len(rewards) + 1)).sum().backward()  # a different weight per row
    return rewards.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True])
def test_splitting_a_batch_by_length_changes_neither_rewards_nor_gradients(tiny_bert, monkeypatch, lora):
    from training.ml import backbone as bb
    from training.ml import length_chunks
    from training.ml.reward import pad_batch

    monkeypatch.setattr(length_chunks, "CPU_OVERHEAD_TOKENS", 0)  # one chunk per distinct length
    model = RewardModel.from_pretrained(tiny_bert).train()
    if lora:
        bb.apply_lora(model.backbone, {"r": 4}, causal=False)
    seqs = [[2, 7, 8, 9, 3], [2, 7, 3], [2, 9, 9, 9, 9, 9, 9, 3], [2, 8, 3], [2, 10, 11, 3]]
    ids, mask = pad_batch(seqs, pad_id=0)
    calls = []
    model.backbone.register_forward_hook(
        lambda mod, args, kwargs, out: calls.append(kwargs["attention_mask"].shape), with_kwargs=True
    )
    model.split_by_length = False
    whole, whole_grads = rewards_and_gradients(model, ids, mask)
    assert calls == [(5, 8)]
    model.split_by_length = True
    calls.clear()
    split, split_grads = rewards_and_gradients(model, ids, mask)
    assert calls == [(2, 3), (1, 4), (1, 5), (1, 8)]  # each chunk only as wide as its longest row
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)
    assert split_grads.keys() == whole_grads.keys() and whole_grads
    for name, grad in whole_grads.items():
        torch.testing.assert_close(split_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_a_decoder_reward_model_reads_the_last_real_token_whatever_the_padding(tiny_llama):
    model = RewardModel.from_pretrained(tiny_llama).eval()
    assert model.pooling == "last"
    ids = torch.tensor([[2, 10, 11, 12]])
    padded = torch.tensor([[2, 10, 11, 12, 0, 0], [2, 13, 0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    with torch.no_grad():
        alone = model(ids, torch.ones_like(ids))
        batched = model(padded, mask)
    assert batched[0].item() == pytest.approx(alone[0].item(), abs=1e-5)


def test_a_saved_reward_model_scores_the_same_after_loading(tiny_bert, tmp_path):
    result = run_training(
        "reward_model", reward_config(tiny_bert, epochs=1), toy_pairs(16), output_dir=tmp_path / "run"
    )
    model = RewardModel.load(result.checkpoint_dir)
    prompt = [{"role": "user", "content": "hello what is it"}]
    replies = ["thanks great kind", "hate", "sure happy help please nice good"]
    scores = model.score(prompt, replies, batch_size=2)
    assert len(scores) == 3
    one_by_one = [model.score(prompt, [r])[0] for r in replies]
    assert scores == pytest.approx(one_by_one, abs=1e-5)
    assert model.score(prompt, []) == []


def test_lora_trains_adapters_and_the_final_checkpoint_holds_merged_weights(tiny_bert, tmp_path):
    rec = Recorder()
    result = run_training(
        "reward_model",
        reward_config(tiny_bert, lora={"r": 4}, lr=1e-2),
        toy_pairs(32),
        output_dir=tmp_path / "run",
        on_log=rec,
    )
    weights = read_weights(result.checkpoint_dir)
    assert not any("lora" in k for k in weights)
    base = RewardModel.from_pretrained(tiny_bert).state_dict()
    key = "backbone.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(weights[key], base[key])  # the adapter was merged in
    key = "backbone.encoder.layer.0.attention.self.key.weight"
    assert torch.equal(weights[key], base[key])  # untargeted weights stay frozen
    assert RewardModel.load(result.checkpoint_dir).score("hi", ["good"])


def test_truncated_and_tied_pairs_are_counted_in_the_result(tiny_bert, tmp_path):
    from training.ml.data import PreferenceExample

    examples = [
        *toy_pairs(8),
        PreferenceExample("hello " * 40, "good", "bad"),
        PreferenceExample("hi", "good", "nice", is_tie=True),
    ]
    rec = Recorder()
    result = run_training(
        "reward_model", reward_config(tiny_bert, epochs=1), examples, output_dir=tmp_path / "run", on_log=rec
    )
    assert result.metrics["train_truncated_examples"] == 1
    assert result.metrics["train_ties_excluded"] == 1
    assert result.metrics["train_pairs"] == 9
    assert rec.of("data")[0]["metrics"]["truncated_examples"] == 1


def test_smoothed_ties_stay_in_training(tiny_bert, tmp_path):
    from training.ml.data import PreferenceExample

    examples = [*toy_pairs(8), PreferenceExample("hi", "good", "nice", is_tie=True)]
    result = run_training(
        "reward_model",
        reward_config(tiny_bert, epochs=1, tie_handling="smooth"),
        examples,
        output_dir=tmp_path / "run",
    )
    assert result.metrics["train_pairs"] == 9
    assert result.metrics["train_ties"] == 1
    assert result.metrics["train_ties_excluded"] == 0


def test_training_with_and_without_the_length_split_gives_the_same_losses(tiny_bert, tmp_path, monkeypatch):
    from training.ml import length_chunks

    monkeypatch.setattr(length_chunks, "CPU_OVERHEAD_TOKENS", 0)  # as many chunks as lengths
    runs = {}
    for split in (True, False):
        rec = Recorder()
        config = reward_config(tiny_bert, split_by_length=split, max_steps=3, device="cpu")
        result = run_training(
            "reward_model", config, toy_pairs(24), output_dir=tmp_path / str(split), on_log=rec
        )
        runs[split] = (rec.losses(), read_weights(result.checkpoint_dir))
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-4)
    # These two shift chosen and rejected rewards alike, so their true gradient is 0 and AdamW turns
    # rounding noise into full-size steps of either sign (see test_trainer.ZERO_GRADIENT).
    split_weights, whole_weights = runs[True][1], runs[False][1]
    for key in whole_weights.keys() - ZERO_GRADIENT:
        torch.testing.assert_close(split_weights[key], whole_weights[key], rtol=1e-4, atol=1e-5)


def test_the_length_split_follows_the_config(tiny_bert):
    from training.ml.config import config_from_dict

    for split in (True, False):
        cfg = config_from_dict("reward_model", reward_config(tiny_bert, split_by_length=split))
        assert RewardTask.build(cfg, toy_pairs(2), None).model.split_by_length is split
