import pytest
import torch

from tests.ml.conftest import Recorder, read_weights, toy_pairs
from training.ml.api import run_training
from training.ml.data import PreferenceExample
from training.ml.policy import SequenceLogProbs, load_policy, response_mask
from training.ml.reward import pad_batch


def dpo_config(model, **overrides):
    return {"model": str(model), "lr": 3e-3, "batch_size": 8, "epochs": 2, "max_length": 32, **overrides}


def test_sequence_log_probs_sum_only_the_response_tokens(tiny_llama):
    lm, _ = load_policy(tiny_llama)
    lm.eval()
    ids = torch.tensor([[2, 10, 11, 12, 13], [2, 14, 15, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    resp = response_mask(mask, torch.tensor([3, 2]))
    assert resp.tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 0, 0]]
    with torch.no_grad():
        sums, counts = SequenceLogProbs(lm)(ids, mask, resp)
        logp = torch.log_softmax(lm(input_ids=ids, attention_mask=mask).logits, -1)
    # By hand from the full logits: token t is predicted at position t - 1.
    row0 = logp[0, 2, 12] + logp[0, 3, 13]
    row1 = logp[1, 1, 15]
    assert sums.tolist() == pytest.approx([row0.item(), row1.item()], abs=1e-5)
    assert counts.tolist() == [2, 1]


def test_dpo_starts_at_log_two_because_the_reference_is_the_starting_policy(tiny_llama, tmp_path):
    rec = Recorder()
    result = run_training(
        "dpo",
        dpo_config(tiny_llama, eval_every=4),
        toy_pairs(64),
        eval_examples=toy_pairs(16, seed=1),
        output_dir=tmp_path / "run",
        on_log=rec,
    )
    losses = rec.losses()
    assert losses[0] == pytest.approx(0.6931, abs=1e-3)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1
    assert result.metrics["accuracy"] >= 0.8  # implicit-reward accuracy on held-out pairs
    assert result.metrics["chosen_reward"] > result.metrics["rejected_reward"]
    lm, tok = load_policy(result.checkpoint_dir)
    start, _ = load_policy(tiny_llama)
    assert not torch.equal(lm.model.layers[0].mlp.up_proj.weight, start.model.layers[0].mlp.up_proj.weight)
    assert tok.chat_template


def test_reference_log_probs_are_computed_once_before_training(tiny_llama, tmp_path, monkeypatch):
    from training.ml import policy

    calls = []
    original = policy.DPOTask._logps

    def counting(self, scorer, data, device):
        calls.append(len(data))
        return original(self, scorer, data, device)

    monkeypatch.setattr(policy.DPOTask, "_logps", counting)
    run_training(
        "dpo",
        dpo_config(tiny_llama, epochs=3),
        toy_pairs(16),
        eval_examples=toy_pairs(4, seed=1),
        output_dir=tmp_path / "run",
    )
    assert calls == [16, 4]  # train and eval sets, once each, for 6 optimiser steps


def test_ipo_trains_too(tiny_llama, tmp_path):
    rec = Recorder()
    run_training(
        "dpo",
        dpo_config(tiny_llama, loss_type="ipo", beta=0.5, lr=1e-2),
        toy_pairs(32),
        output_dir=tmp_path / "run",
        on_log=rec,
    )
    losses = rec.losses()
    assert losses[0] == pytest.approx(1.0, abs=1e-3)  # (0 - 1/(2*0.5))^2 with policy == reference
    assert losses[-1] < losses[0]


def test_lora_dpo_saves_a_merged_policy(tiny_llama, tmp_path):
    result = run_training(
        "dpo",
        dpo_config(tiny_llama, lora=True, epochs=1, lr=1e-2),
        toy_pairs(16),
        output_dir=tmp_path / "run",
    )
    weights = read_weights(result.checkpoint_dir)
    assert not any("lora" in k for k in weights)
    lm, _ = load_policy(result.checkpoint_dir)
    assert type(lm).__name__ == "LlamaForCausalLM"


@pytest.mark.parametrize("prompt", ["hello what is it", ""])
def test_packed_pairs_score_each_reply_as_if_it_followed_the_prompt_alone(tiny_llama, prompt):
    from training.ml.policy import PackedPairLogProbs, packed_batch
    from training.ml.tokenization import tokenize_pairs

    lm, tok = load_policy(tiny_llama)
    lm.eval()
    examples = [*toy_pairs(5), PreferenceExample(prompt, "good nice", "bad")]
    data = tokenize_pairs(tok, examples, max_length=32, is_encoder=False)
    idx = list(range(len(examples)))
    ids, mask = pad_batch([data.chosen[i] for i in idx] + [data.rejected[i] for i in idx], tok.pad_token_id)
    plen = torch.tensor(data.prompt_len * 2)
    packed = packed_batch(data, idx, tok.pad_token_id)
    with torch.no_grad():
        plain_sums, plain_counts = SequenceLogProbs(lm)(ids, mask, response_mask(mask, plen))
        keys = ("input_ids", "position_ids", "segments", "src", "tgt", "slot")
        packed_sums, packed_counts = PackedPairLogProbs(lm)(*(packed[k] for k in keys))
    assert packed_counts.tolist() == plain_counts.tolist()
    torch.testing.assert_close(packed_sums, plain_sums, rtol=1e-4, atol=1e-4)
    # Shorter: prompt once, then both replies.
    assert packed["input_ids"].numel() < ids.numel()
