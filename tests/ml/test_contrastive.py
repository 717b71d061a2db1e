import pytest

from tests.ml.conftest import Recorder, toy_pairs
from training.ml.api import run_training


@pytest.mark.parametrize("objective", ["margin_ranking", "info_nce"])
def test_an_embedding_model_learns_to_place_prompts_near_chosen_replies(objective, tiny_bert, tmp_path):
    rec = Recorder()
    result = run_training(
        "contrastive",
        {
            "model": str(tiny_bert),
            "objective": objective,
            "lr": 3e-3,
            "batch_size": 8,
            "epochs": 2,
            "max_length": 32,
        },
        toy_pairs(48),
        eval_examples=toy_pairs(16, seed=1),
        output_dir=tmp_path / objective,
        on_log=rec,
    )
    losses = rec.losses()
    assert losses[-1] < losses[0]
    assert result.metrics["accuracy"] >= 0.75
    assert result.metrics["margin"] > 0


def test_the_contrastive_lm_loss_raises_the_chosen_likelihood_over_the_rejected(tiny_llama, tmp_path):
    rec = Recorder()
    result = run_training(
        "contrastive",
        {"model": str(tiny_llama), "objective": "contrastive_lm", "lr": 3e-3, "batch_size": 8, "epochs": 2},
        # Raw likelihoods favour short replies; equal lengths keep the toy task about the words.
        toy_pairs(48, equal_lengths=True),
        eval_examples=toy_pairs(16, seed=1, equal_lengths=True),
        output_dir=tmp_path / "clm",
        on_log=rec,
    )
    losses = rec.losses()
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert result.metrics["accuracy"] >= 0.75
