"""`python -m training.ml train-rl`: a policy optimised against a reward checkpoint from the shell."""

import json

import pytest

from tests.ml.test_cli import HH_ROWS, write_jsonl
from tests.ml.tiny_models import save_tiny_causal_lm, save_tiny_encoder
from training.ml.cli import _read_prompts, main


@pytest.fixture(scope="module")
def reward_checkpoint(tmp_path_factory):
    encoder = save_tiny_encoder(tmp_path_factory.mktemp("encoder"))
    data = write_jsonl(tmp_path_factory.mktemp("data") / "hh.jsonl", HH_ROWS)
    out = tmp_path_factory.mktemp("rm")
    argv = ["train-reward", "--data", data, "--model", encoder, "--out", out, "--max-length", "64"]
    assert main([str(a) for a in [*argv, "--batch-size", "2", "--device", "cpu", "--quiet"]]) == 0
    return out


def test_train_rl_writes_a_final_policy_and_prints_its_metrics(reward_checkpoint, tmp_path, capsys):
    policy = save_tiny_causal_lm(tmp_path / "policy")
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Say hi"}, {"prompt": "Help me"}])
    prompts.write_text(prompts.read_text() + json.dumps("Thanks") + "\n")
    argv = [
        "train-rl", "--method", "rloo", "--prompts", prompts, "--model", policy,
        "--reward-model", reward_checkpoint, "--out", tmp_path / "run", "--max-steps", "2",
        "--batch-size", "2", "--k", "2", "--max-new-tokens", "4", "--max-length", "64", "--device", "cpu",
    ]  # fmt: skip
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["steps"] == 2 and not result["stopped"]
    assert "reward" in captured.err  # progress lines carry the rollout's reward and KL
    meta = json.loads((tmp_path / "run" / "final" / "checkpoint.json").read_text())
    assert meta["kind"] == "rloo" and meta["lora"] is True  # LoRA unless --full
    from training.ml.generation import Generator

    tuned = Generator.load(tmp_path / "run" / "final", device="cpu")  # adapters merged: a plain LM
    assert len(tuned.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=3)[0]) == 1


def test_train_rl_refuses_to_start_without_a_reward_model(tmp_path, capsys):
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Hi"}])
    code = main(
        ["train-rl", "--method", "ppo", "--prompts", str(prompts), "--model", "m", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "--reward-model" in capsys.readouterr().err


def test_prompts_come_from_preference_rows_once_each(tmp_path):
    rows = write_jsonl(tmp_path / "hh.jsonl", HH_ROWS + HH_ROWS[:1])
    prompts = _read_prompts(rows)
    assert len(prompts) == len(HH_ROWS)
