"""A few runs on the real small models that PyPI packages ship (minilm-l6, smollm2-135m)."""

import warnings
from pathlib import Path

import pytest
import torch

from tests.ml.conftest import Recorder
from training.ml.api import run_training
from training.ml.data import read_preference_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HH_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hh-harmless-dev.jsonl"


@pytest.fixture(scope="module")
def hh_pairs():
    if not HH_DATA.is_file():
        pytest.skip("shared HH data is not on this machine")
    return read_preference_jsonl(HH_DATA)


def test_minilm_reward_model_takes_real_hh_steps_and_scores_from_its_checkpoint(hh_pairs, tmp_path):
    from training.ml.reward import RewardModel

    rec = Recorder()
    result = run_training(
        "reward_model",
        {"model": "minilm-l6", "max_length": 96, "batch_size": 4, "max_steps": 2, "lr": 5e-5},
        hh_pairs[:8],
        eval_examples=hh_pairs[8:12],
        output_dir=tmp_path / "rm",
        on_log=rec,
    )
    assert result.steps == 2
    assert all(torch.isfinite(torch.tensor(loss)) for loss in rec.losses())
    assert result.metrics["pairs"] == 4
    assert result.metrics["train_truncated_examples"] > 0  # HH prompts are long; counted, not dropped
    model = RewardModel.load(result.checkpoint_dir)
    assert model.encoder and model.pooling == "mean"
    assert len(model.score(hh_pairs[0].prompt, [hh_pairs[0].chosen, hh_pairs[0].rejected])) == 2


def test_smollm2_dpo_packs_prompts_through_its_chat_template(hh_pairs, tmp_path):
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a packing fallback would warn
        result = run_training(
            "dpo",
            {"model": "smollm2-135m", "max_length": 96, "batch_size": 2, "max_steps": 1, "lr": 1e-6},
            hh_pairs[:2],
            output_dir=tmp_path / "dpo",
            on_log=rec,
        )
    assert result.steps == 1
    assert rec.losses()[0] == pytest.approx(0.6931, abs=1e-3)
    assert (result.checkpoint_dir / "chat_template.jinja").is_file() or "chat_template" in (
        result.checkpoint_dir / "tokenizer_config.json"
    ).read_text()
