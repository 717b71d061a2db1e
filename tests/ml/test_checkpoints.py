import json
import re
from pathlib import Path

import pytest
import torch

from tests.ml.conftest import Recorder, read_weights, save_tiny_bert, toy_pairs
from training.ml import checkpoints as ck
from training.ml.api import run_training
from training.ml.config import ConfigError

ML_SOURCE = Path(__file__).resolve().parents[2] / "training" / "ml"


@pytest.fixture(scope="module")
def dropout_bert(tmp_path_factory):
    # Dropout makes the run depend on the RNG, so resuming must restore it to match.
    return save_tiny_bert(tmp_path_factory.mktemp("bert-dropout"), dropout=0.1)


def config(model, **overrides):
    return {"model": str(model), "lr": 2e-3, "batch_size": 8, "epochs": 2, "max_length": 32, **overrides}


def test_a_run_stopped_at_step_k_and_resumed_ends_where_an_uninterrupted_run_ends(dropout_bert, tmp_path):
    data = toy_pairs(40)  # 5 steps per epoch, 10 in all: the stop and the resume cross an epoch boundary
    cfg = config(dropout_bert, disable_dropout=False)
    straight = run_training("reward_model", cfg, data, output_dir=tmp_path / "straight")

    first = run_training(
        "reward_model",
        cfg,
        data,
        output_dir=tmp_path / "resumed",
        on_log=Recorder(stop_at=4),
    )
    assert first.stopped and first.steps == 4
    rec = Recorder()
    second = run_training("reward_model", cfg, data, output_dir=tmp_path / "resumed", on_log=rec)
    assert not second.stopped
    assert second.steps == straight.steps == 10
    assert [e["step"] for e in rec.of("step")] == [5, 6, 7, 8, 9, 10]
    assert not list((tmp_path / "resumed").glob("step-*"))  # the final checkpoint replaces them
    assert (tmp_path / "resumed" / "LATEST").read_text().strip() == "final"
    a, b = read_weights(straight.checkpoint_dir), read_weights(second.checkpoint_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_a_finished_run_is_not_trained_again(tiny_bert, tmp_path):
    done = run_training("reward_model", config(tiny_bert, epochs=1), toy_pairs(16), output_dir=tmp_path / "r")
    rec = Recorder()
    again = run_training(
        "reward_model", config(tiny_bert, epochs=1), toy_pairs(16), output_dir=tmp_path / "r", on_log=rec
    )
    assert again.checkpoint_dir == done.checkpoint_dir
    assert rec.of("step") == []


def test_resuming_with_another_config_is_refused(tiny_bert, tmp_path):
    run_training("reward_model", config(tiny_bert, epochs=1), toy_pairs(16), output_dir=tmp_path / "r")
    with pytest.raises(ConfigError, match="different run"):
        run_training(
            "reward_model", config(tiny_bert, epochs=1, lr=1e-4), toy_pairs(16), output_dir=tmp_path / "r"
        )


def test_a_half_written_checkpoint_is_never_picked_up(tiny_bert, tmp_path):
    out = tmp_path / "r"
    stopped = run_training(
        "reward_model", config(tiny_bert), toy_pairs(16), output_dir=out, on_log=Recorder(stop_at=1)
    )
    # A crash mid-write leaves a temp dir; a directory without a complete marker is not a checkpoint.
    (out / ".tmp-step-00000003-dead").mkdir()
    (out / ".tmp-step-00000003-dead" / "checkpoint.json").write_text(
        json.dumps({"step": 3, "complete": True})
    )
    (out / "step-00000002").mkdir()
    (out / "step-00000002" / "model.safetensors").write_bytes(b"partial")
    assert ck.latest_checkpoint(out) == stopped.checkpoint_dir
    rec = Recorder()
    run_training("reward_model", config(tiny_bert), toy_pairs(16), output_dir=out, on_log=rec)
    assert rec.of("step")[0]["step"] == 2  # resumed after step 1, not from the fake step 2 or 3
    assert not list(out.glob(".tmp-*"))


def test_a_failing_write_leaves_no_checkpoint_behind(tmp_path):
    def fill(directory):
        (directory / "model.safetensors").write_bytes(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ck.write_checkpoint(tmp_path, "step-00000001", fill, {"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    ck.save_optimizer(tmp_path, opt)
    fresh = torch.optim.AdamW(model.parameters(), lr=0.5)
    ck.load_optimizer(tmp_path, fresh)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx in a["state"]:
        for key, value in a["state"][idx].items():
            torch.testing.assert_close(b["state"][idx][key], value)


def test_a_checkpoint_holds_only_safetensors_json_and_tokenizer_files(tiny_bert, tmp_path):
    result = run_training(
        "reward_model",
        config(tiny_bert, epochs=1),
        toy_pairs(16),
        output_dir=tmp_path / "r",
        on_log=Recorder(stop_at=1),
        lineage={"data_snapshot": "snap-1"},
    )
    names = sorted(p.name for p in result.checkpoint_dir.iterdir())
    assert {"model.safetensors", "optimizer.safetensors", "optimizer.json", "rng.safetensors"} <= set(names)
    assert {"config.json", "checkpoint.json", "trainer_state.json", "model_config.json"} <= set(names)
    for p in result.checkpoint_dir.iterdir():
        assert p.suffix in (".json", ".safetensors", ".jinja", ".txt"), p.name
        assert not p.read_bytes().startswith(b"\x80"), f"{p.name} looks like a pickle"
    meta = json.loads((result.checkpoint_dir / "checkpoint.json").read_text())
    assert meta["lineage"] == {"data_snapshot": "snap-1"}
    assert (meta["kind"], meta["step"], meta["base_model"]) == ("reward_model", 1, str(tiny_bert))


def test_the_ml_core_never_unpickles():
    for path in ML_SOURCE.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"torch\.load\(|import pickle|pickle\.load", text), path.name
