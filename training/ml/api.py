"""The one entry point the Celery workers, the CLI and the benches call: `run_training`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .backbone import disable_dropout
from .config import ConfigError, TrainingConfig, config_from_dict
from .data import PreferenceExample, split_ties
from .trainer import OnLog, Trainer, TrainingResult, seed_everything

KINDS = ("reward_model", "dpo", "contrastive")  # trained on preference pairs; RL_KINDS on prompts


def build_task(cfg: TrainingConfig, examples: Sequence[PreferenceExample], eval_examples):
    """The Task for cfg.kind, with its model loaded and its data tokenised once."""
    if cfg.kind == "reward_model":
        from .reward import RewardTask

        return RewardTask.build(cfg, examples, eval_examples)
    if cfg.kind == "dpo":
        from .policy import DPOTask

        return DPOTask.build(cfg, examples, eval_examples)
    from .contrastive import ContrastiveTask

    return ContrastiveTask.build(cfg, examples, eval_examples)


def run_training(
    kind: str,
    config: dict[str, Any] | TrainingConfig,
    examples: Sequence[PreferenceExample],
    *,
    output_dir: Path,
    on_log: OnLog | None = None,
    eval_examples: Sequence[PreferenceExample] | None = None,
    lineage: dict[str, Any] | None = None,
) -> TrainingResult:
    """Train `kind` on `examples`, resuming from the newest complete checkpoint in `output_dir`.

    `on_log(event)` gets step / eval / checkpoint / done events; returning True stops the run after
    the current step with a resumable checkpoint and `result.stopped == True`. Ties are excluded or
    smoothed per `tie_handling`; how many, and how many pairs were truncated, are in `result.metrics`
    (keys prefixed `train_`) and in every checkpoint's checkpoint.json.
    """
    from .config import RL_KINDS

    if kind in RL_KINDS:
        raise ConfigError(f"{kind} trains on prompts against a reward, not on pairs: call run_rl.")
    if kind not in KINDS:
        raise ConfigError(f"Unknown training kind {kind!r}; expected one of {', '.join(KINDS)}.")
    cfg = config_from_dict(kind, config)
    if cfg.early_stopping_patience and not eval_examples:
        raise ConfigError("early_stopping_patience needs eval_examples to measure improvement on.")
    train, ties = split_ties(examples, tie_handling=cfg.tie_handling)
    evals, _ = split_ties(eval_examples or [], tie_handling="exclude")  # a tie has no right answer
    seed_everything(cfg.seed)
    task = build_task(cfg, train, evals)
    if cfg.disable_dropout:
        disable_dropout(task.model)
    stats = {
        **task.train.stats(),
        "ties": ties,
        "ties_excluded": ties if cfg.tie_handling == "exclude" else 0,
        "examples_given": len(examples),
    }
    if getattr(task, "eval", None) is not None:
        stats["eval_pairs"] = len(task.eval)
        stats["eval_truncated_examples"] = task.eval.truncated_examples
    if on_log is not None:
        on_log({"event": "data", "step": 0, "metrics": stats})
    trainer = Trainer(
        task, cfg, output_dir=Path(output_dir), on_log=on_log, lineage=lineage, data_stats=stats
    )
    return trainer.run()


def run_rl(
    kind: str,
    config: dict[str, Any] | TrainingConfig,
    prompts: Sequence[Any],
    *,
    output_dir: Path,
    reward_fn: Any = None,
    on_log: OnLog | None = None,
    lineage: dict[str, Any] | None = None,
) -> TrainingResult:
    """Optimise a causal LM online against a reward (`kind` in RL_KINDS: rloo, ppo, soft_q).

    `prompts` are the project's training prompts only (conversations or strings); held-back prompts
    must never be passed. `reward_fn(prompts, responses) -> scores` defaults to the reward model at
    `config.reward_model`. Events, stopping and resuming work as for `run_training`; step events
    carry the rollout's reward, KL, entropy, length, advantage statistics and samples per second.
    """
    from .config import RL_KINDS

    if kind not in RL_KINDS:
        raise ConfigError(f"Unknown RL method {kind!r}; expected one of {', '.join(RL_KINDS)}.")
    cfg = config_from_dict(kind, config)
    if reward_fn is None:
        if not cfg.reward_model:
            raise ConfigError(f"{kind} needs reward_model (a reward checkpoint) or a reward function.")
        from .rollouts import scorer_reward
        from .serving import RewardScorer

        reward_fn = scorer_reward(RewardScorer.load(cfg.reward_model, device=cfg.device))
    from .rl import RLTask

    seed_everything(cfg.seed)
    task = RLTask.build(cfg, prompts, reward_fn)
    if cfg.disable_dropout:
        disable_dropout(task.model)
    stats = {"prompts": len(prompts)}
    if on_log is not None:
        on_log({"event": "data", "step": 0, "metrics": stats})
    trainer = Trainer(
        task, cfg, output_dir=Path(output_dir), on_log=on_log, lineage=lineage, data_stats=stats
    )
    return trainer.run()
