import shutil

import pytest
import torch

from tests.ml.conftest import Recorder, read_weights, toy_pairs
from training.ml.api import run_training
from training.ml.config import ConfigError, config_from_dict
from training.ml.trainer import global_batches, lr_lambda, pick_device

# Their gradient is zero in theory (a shift common to r_chosen and r_rejected cancels in the loss); Adam
# turns the float noise left in it into lr-sized steps, so they differ between any two summation orders.
ZERO_GRADIENT = {"head.bias", "backbone.encoder.layer.1.output.LayerNorm.bias"}


def cfg(model, **overrides):
    return {"model": str(model), "lr": 2e-3, "batch_size": 8, "epochs": 1, "max_length": 32, **overrides}


def test_the_learning_rate_warms_up_then_decays_to_zero():
    c = config_from_dict("reward_model", {"model": "m", "warmup_ratio": 0.2})
    f = lr_lambda(c, 10)
    assert [round(f(s), 3) for s in range(4)] == [0.333, 0.667, 1.0, 0.875]
    assert f(10) == 0.0
    cosine = lr_lambda(
        config_from_dict("reward_model", {"model": "m", "warmup_ratio": 0.0, "schedule": "cosine"}), 10
    )
    assert cosine(0) == 1.0
    assert cosine(5) == pytest.approx(0.5)


def test_length_grouped_batches_cover_every_pair_once_and_pad_little():
    lengths = [i % 17 + 1 for i in range(200)]
    batches = global_batches(200, 8, seed=1, epoch=0, lengths=lengths)
    assert sorted(i for b in batches for i in b) == list(range(200))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 3
    assert global_batches(200, 8, seed=1, epoch=0, lengths=lengths) == batches
    assert global_batches(200, 8, seed=1, epoch=1, lengths=lengths) != batches


def test_the_device_is_picked_automatically_and_bf16_is_refused_off_cuda(tiny_bert, tmp_path):
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(ConfigError, match="bf16"):
            run_training(
                "reward_model", cfg(tiny_bert, precision="bf16"), toy_pairs(8), output_dir=tmp_path / "r"
            )


def test_a_callback_stops_the_run_after_the_current_step_with_a_checkpoint(tiny_bert, tmp_path):
    rec = Recorder(stop_at=2)
    result = run_training(
        "reward_model", cfg(tiny_bert, epochs=3), toy_pairs(32), output_dir=tmp_path / "r", on_log=rec
    )
    assert result.stopped
    assert result.steps == 2
    assert [e["step"] for e in rec.of("step")] == [1, 2]
    assert result.checkpoint_dir.name == "step-00000002"
    assert (result.checkpoint_dir / "checkpoint.json").is_file()
    assert rec.of("done")[0]["stopped"] is True


def test_gradient_accumulation_matches_one_big_batch(tiny_bert, tmp_path):
    common = {"group_by_length": False, "max_steps": 3, "warmup_ratio": 0.0}
    big = run_training("reward_model", cfg(tiny_bert, **common), toy_pairs(48), output_dir=tmp_path / "big")
    small = run_training(
        "reward_model",
        cfg(tiny_bert, batch_size=4, grad_accum=2, **common),
        toy_pairs(48),
        output_dir=tmp_path / "acc",
    )
    a, b = read_weights(big.checkpoint_dir), read_weights(small.checkpoint_dir)
    for key in a.keys() - ZERO_GRADIENT:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_early_stopping_ends_the_run_when_the_metric_stops_improving(tiny_bert, tmp_path):
    rec = Recorder()
    result = run_training(
        "reward_model",
        # A vanishing learning rate: evaluation loss cannot improve, so patience runs out.
        cfg(
            tiny_bert,
            lr=1e-12,
            epochs=4,
            eval_every=1,
            early_stopping_patience=2,
            early_stopping_metric="loss",
        ),
        toy_pairs(32),
        eval_examples=toy_pairs(8, seed=1),
        output_dir=tmp_path / "r",
        on_log=rec,
    )
    assert result.metrics["early_stopped"] is True
    assert result.steps < 16
    assert not result.stopped


def flipped(pairs):
    """The same pairs with the other reply preferred: the better a model learns `pairs`, the worse
    it does on these."""
    from training.ml.data import PreferenceExample

    return [PreferenceExample(p.prompt, chosen=p.rejected, rejected=p.chosen) for p in pairs]


def early_stopping(model, **overrides):
    watching_loss = {
        "epochs": 4,
        "eval_every": 1,
        "early_stopping_patience": 2,
        "early_stopping_metric": "loss",
    }
    return cfg(model, **{**watching_loss, **overrides})


def test_early_stopping_ends_on_the_weights_of_the_best_evaluation(tiny_bert, tmp_path):
    from training.ml.serving import RewardScorer

    rec = Recorder()
    train, held_out = toy_pairs(32), flipped(toy_pairs(8, seed=1))
    result = run_training(
        "reward_model",
        early_stopping(tiny_bert),
        train,
        eval_examples=held_out,
        output_dir=tmp_path / "r",
        on_log=rec,
    )
    evals = {e["step"]: e["metrics"] for e in rec.of("eval")}
    assert result.metrics["early_stopped"] is True
    assert evals[1]["loss"] < evals[2]["loss"] < evals[3]["loss"]  # learning train makes held-out worse
    assert result.steps == 3
    assert result.metrics["best_step"] == 1
    assert result.metrics["loss"] == evals[1]["loss"]
    # The saved model is step 1's: scored afresh, its held-out margin is step 1's, not step 3's.
    margin = RewardScorer.load(result.checkpoint_dir, device="cpu").evaluate(held_out)["margin"]
    assert margin == pytest.approx(evals[1]["margin"], abs=1e-4)
    assert margin != pytest.approx(evals[3]["margin"], abs=1e-4)
    assert not list((tmp_path / "r").glob("best-*"))


def test_early_stopping_keeps_the_last_weights_when_they_are_the_best(tiny_bert, tmp_path):
    rec = Recorder()
    result = run_training(
        "reward_model",
        early_stopping(tiny_bert, epochs=1),
        toy_pairs(32),
        eval_examples=toy_pairs(8, seed=1),  # the same preference as training: keeps improving
        output_dir=tmp_path / "r",
        on_log=rec,
    )
    losses = [e["metrics"]["loss"] for e in rec.of("eval")]
    assert losses == sorted(losses, reverse=True) and len(losses) == 4
    assert "best_step" not in result.metrics and "early_stopped" not in result.metrics
    assert result.metrics["loss"] == losses[-1]


def test_the_best_weights_survive_a_stop_and_resume(tiny_bert, tmp_path):
    from training.ml.serving import RewardScorer

    train, held_out = toy_pairs(32), flipped(toy_pairs(8, seed=1))
    config = early_stopping(tiny_bert, checkpoint_every=1)
    before = Recorder(stop_at=2)
    first = run_training(
        "reward_model", config, train, eval_examples=held_out, output_dir=tmp_path / "r", on_log=before
    )
    assert first.stopped and (tmp_path / "r" / "best-00000001").is_dir()
    # A copy left by an attempt that died after the checkpoint (here: step 2's weights) is not used.
    shutil.copytree(tmp_path / "r" / "step-00000002", tmp_path / "r" / "best-00000002")

    result = run_training("reward_model", config, train, eval_examples=held_out, output_dir=tmp_path / "r")

    assert result.metrics["best_step"] == 1 and result.steps == 3
    step_1 = next(e["metrics"] for e in before.of("eval") if e["step"] == 1)
    margin = RewardScorer.load(result.checkpoint_dir, device="cpu").evaluate(held_out)["margin"]
    assert margin == pytest.approx(step_1["margin"], abs=1e-4)
    assert not list((tmp_path / "r").glob("best-*"))


def test_an_empty_training_set_is_a_clear_error(tiny_bert, tmp_path):
    from training.ml.data import PreferenceExample

    with pytest.raises(ValueError, match="No training pairs"):
        run_training(
            "reward_model",
            cfg(tiny_bert),
            [PreferenceExample("p", "a", "b", is_tie=True)],
            output_dir=tmp_path / "r",
        )
