import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml.tiny_models import save_tiny_causal_lm, save_tiny_encoder
from training.ml.cli import main

REPO = Path(__file__).resolve().parents[2]
HH_ROWS = [
    {
        "chosen": "\n\nHuman: Say hi\n\nAssistant: Hello, friend!",
        "rejected": "\n\nHuman: Say hi\n\nAssistant: No.",
    },
    {
        "chosen": "\n\nHuman: Help me\n\nAssistant: Sure, gladly.",
        "rejected": "\n\nHuman: Help me\n\nAssistant: Go away.",
    },
    {
        "chosen": "\n\nHuman: Thanks\n\nAssistant: You're welcome!",
        "rejected": "\n\nHuman: Thanks\n\nAssistant: Whatever.",
    },
    {
        "chosen": "\n\nHuman: Joke?\n\nAssistant: Why did the cat sit?",
        "rejected": "\n\nHuman: Joke?\n\nAssistant: No jokes.",
    },
]
TRL_ROWS = [
    {"prompt": "Greet me", "chosen": " Hello there!", "rejected": " Meh."},
    {
        "prompt": [{"role": "user", "content": "Be kind"}],
        "chosen": [{"role": "assistant", "content": "You matter."}],
        "rejected": [{"role": "assistant", "content": "No."}],
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_cli(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {"hh": write_jsonl(root / "hh.jsonl", HH_ROWS), "trl": write_jsonl(root / "trl.jsonl", TRL_ROWS)}


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory, data):
    encoder = save_tiny_encoder(tmp_path_factory.mktemp("encoder"))
    out = tmp_path_factory.mktemp("rm")
    code = main(
        [
            "train-reward",
            "--data",
            str(data["hh"]),
            "--model",
            str(encoder),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--max-length",
            "64",
            "--lr",
            "1e-3",
            "--seed",
            "3",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    assert code == 0
    return out


def test_train_reward_prints_where_the_checkpoint_is(reward_run, capsys):
    assert (reward_run / "final" / "checkpoint.json").is_file()
    config = json.loads((reward_run / "final" / "config.json").read_text())
    assert (config["batch_size"], config["max_length"], config["lr"], config["seed"]) == (2, 64, 1e-3, 3)


def test_eval_reward_prints_accuracy_margin_ece_and_pairs(reward_run, data, capsys):
    code, result, _ = run_cli(
        capsys, "eval-reward", "--model", reward_run, "--data", data["hh"], "--device", "cpu"
    )
    assert code == 0
    assert set(result) == {"accuracy", "margin", "ece", "pairs"}
    assert result["pairs"] == len(HH_ROWS)
    assert 0 <= result["accuracy"] <= 1


def test_eval_reward_reads_trl_files_too(reward_run, data, capsys):
    code, result, _ = run_cli(
        capsys, "eval-reward", "--model", reward_run, "--data", data["trl"], "--device", "cpu"
    )
    assert code == 0
    assert result["pairs"] == len(TRL_ROWS)


def test_score_prints_one_score_per_response(reward_run, capsys):
    code, result, _ = run_cli(
        capsys,
        "score",
        "--model",
        reward_run,
        "--prompt",
        "Say hi",
        "--response",
        "Hello!",
        "--response",
        "No.",
    )
    assert code == 0
    assert len(result["scores"]) == 2


def test_train_dpo_on_trl_data_writes_a_policy_the_generator_can_load(tmp_path, data, capsys):
    from training.ml.generation import Generator

    lm = save_tiny_causal_lm(tmp_path / "lm")
    code, result, err = run_cli(
        capsys,
        "train-dpo",
        "--data",
        data["trl"],
        "--model",
        lm,
        "--out",
        tmp_path / "dpo",
        "--batch-size",
        "2",
        "--max-length",
        "64",
        "--beta",
        "0.2",
        "--device",
        "cpu",
    )
    assert code == 0
    assert result["steps"] == 1
    assert "step 1/1" in err  # progress goes to stderr, the result alone to stdout
    config = json.loads((Path(result["checkpoint"]) / "config.json").read_text())
    assert config["beta"] == 0.2
    texts = Generator.load(result["checkpoint"], device="cpu").generate(
        [[{"role": "user", "content": "hi"}]], n=1
    )
    assert len(texts[0]) == 1


def test_a_missing_data_file_is_a_one_line_error(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "train-reward",
        "--data",
        tmp_path / "nope.jsonl",
        "--model",
        "minilm-l6",
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert err.startswith("error:") and "nope.jsonl" in err


def test_a_file_with_bad_json_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(HH_ROWS[0]) + "\n{not json\n")
    code, _, err = run_cli(
        capsys, "train-reward", "--data", bad, "--model", "minilm-l6", "--out", tmp_path / "o"
    )
    assert code == 2
    assert ":2:" in err


def test_a_bad_config_value_is_refused_before_any_training(tmp_path, data, capsys):
    code, _, err = run_cli(
        capsys,
        "train-reward",
        "--data",
        data["hh"],
        "--model",
        "minilm-l6",
        "--out",
        tmp_path / "out",
        "--lr",
        "-1",
    )
    assert code == 2
    assert "lr" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_key_in_a_config_file_is_named(tmp_path, data, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"learning_rate": 1e-4}))
    code, _, err = run_cli(
        capsys,
        "train-reward",
        "--data",
        data["hh"],
        "--model",
        "minilm-l6",
        "--out",
        tmp_path / "out",
        "--config",
        config,
    )
    assert code == 2
    assert "learning_rate" in err


def test_score_needs_at_least_one_response(reward_run):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--model", str(reward_run), "--prompt", "hi"])
    assert exit_info.value.code == 2


def test_the_module_runs_as_a_program_without_django():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    code = (
        "import runpy, sys\nsys.argv = ['x', '--help']\n"
        "try:\n    runpy.run_module('training.ml', run_name='__main__')\n"
        "except SystemExit:\n    pass\nprint('django' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert "train-reward" in out.stdout
    assert out.stdout.strip().endswith("False")
