import json

import pytest

from training.ml.config import (
    ConfigError,
    ContrastiveConfig,
    DPOConfig,
    RewardConfig,
    config_from_dict,
    config_from_json,
)


def test_it_builds_a_reward_config_with_defaults_filled_in():
    cfg = config_from_dict("reward_model", {"model": "minilm-l6"})
    assert isinstance(cfg, RewardConfig)
    assert cfg.tie_handling == "exclude"
    assert cfg.device == "auto"


def test_it_round_trips_every_config_through_json():
    for kind, extra in [
        ("reward_model", {}),
        ("dpo", {"beta": 0.2}),
        ("contrastive", {"objective": "info_nce"}),
    ]:
        cfg = config_from_dict(kind, {"model": "m", "lora": {"r": 4}, **extra})
        again = config_from_json(kind, json.dumps(cfg.to_dict()))
        assert again == cfg


def test_every_field_has_help_text():
    for cls in (RewardConfig, DPOConfig, ContrastiveConfig):
        assert all(text for text in cls.help().values()), cls


def test_it_names_unknown_keys():
    with pytest.raises(ConfigError, match="learning_rate"):
        config_from_dict("reward_model", {"model": "m", "learning_rate": 1e-3})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"tie_handling": "coin-flip"}, "tie_handling"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"label_smoothing": 0.7}, "label_smoothing"),
        ({"device": "tpu"}, "device"),
        ({"model": ""}, "model"),
        ({"early_stopping_patience": 2}, "eval_every"),
        ({"lora": {"rank": 4}}, "lora"),
        ({"group_by_length": "yes"}, "group_by_length"),
    ],
)
def test_it_refuses_bad_values_with_a_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict("reward_model", {"model": "m", **overrides})


def test_it_refuses_an_unknown_kind_and_bad_dpo_values():
    with pytest.raises(ConfigError, match="kind"):
        config_from_dict("sft", {"model": "m"})  # ppo is a kind now
    with pytest.raises(ConfigError, match="beta"):
        config_from_dict("dpo", {"model": "m", "beta": 0})
    with pytest.raises(ConfigError, match="temperature"):
        config_from_dict("contrastive", {"model": "m", "temperature": 0})
    with pytest.raises(ConfigError, match="tie"):
        config_from_dict("contrastive", {"model": "m", "tie_handling": "smooth"})


def test_it_refuses_json_that_is_not_an_object():
    with pytest.raises(ConfigError):
        config_from_json("dpo", "[1, 2]")
    with pytest.raises(ConfigError, match="JSON"):
        config_from_json("dpo", "{nope")
