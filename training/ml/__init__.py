"""The ML core: preference data, objectives, reward models, DPO, the trainer and checkpoints.

Imports torch / transformers / peft, never Django; heavy modules load lazily so that importing the
package (e.g. for the configs) stays cheap.
"""

from .config import ConfigError, ContrastiveConfig, DPOConfig, RewardConfig, TrainingConfig, config_from_dict
from .data import (
    DataError,
    PreferenceExample,
    aggregate_votes,
    examples_from_hh_row,
    examples_from_trl_row,
    read_preference_jsonl,
)

__all__ = [
    "ConfigError",
    "ContrastiveConfig",
    "DPOConfig",
    "DataError",
    "PreferenceExample",
    "RewardConfig",
    "RewardModel",
    "TrainingConfig",
    "TrainingResult",
    "aggregate_votes",
    "config_from_dict",
    "examples_from_hh_row",
    "examples_from_trl_row",
    "read_preference_jsonl",
    "run_training",
]


def __getattr__(name: str):
    # torch and transformers load only when a trainer or model is actually asked for.
    if name == "run_training":
        from .api import run_training

        return run_training
    if name == "TrainingResult":
        from .trainer import TrainingResult

        return TrainingResult
    if name == "RewardModel":
        from .reward import RewardModel

        return RewardModel
    raise AttributeError(name)
