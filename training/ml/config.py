"""Typed, validated training configs: one dataclass per method, stored with every run and checkpoint.

>>> cfg = config_from_dict("reward_model", {"model": "minilm-l6", "lr": 3e-5})
>>> cfg.batch_size, cfg.to_dict()["lr"]
(16, 3e-05)
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A config names an unknown key or holds a value the trainer cannot use."""


def _f(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class TrainingConfig:
    """What every trainer needs; the method-specific configs add their own fields."""

    model: str = _f(
        "", "Base model: a short name (minilm-l6, smollm2-135m), a local directory or a checkpoint."
    )
    max_length: int = _f(512, "Tokens per sequence (prompt + response); the prompt's start is cut first.")
    batch_size: int = _f(16, "Preference pairs per optimiser step on each process (before accumulation).")
    eval_batch_size: int = _f(0, "Pairs per evaluation batch; 0 means 2 x batch_size.")
    epochs: float = _f(1.0, "Passes over the training pairs (ignored when max_steps > 0).")
    max_steps: int = _f(0, "Optimiser steps to run; 0 means derive from epochs.")
    lr: float = _f(5e-5, "Peak learning rate of AdamW.")
    schedule: Literal["linear", "cosine", "constant"] = _f("linear", "Decay after warmup.")
    warmup_ratio: float = _f(0.1, "Fraction of the steps spent warming the learning rate up from 0.")
    weight_decay: float = _f(0.0, "AdamW decoupled weight decay (not applied to biases and norms).")
    adam_beta1: float = _f(0.9, "AdamW beta1.")
    adam_beta2: float = _f(0.999, "AdamW beta2.")
    adam_eps: float = _f(1e-8, "AdamW epsilon.")
    grad_accum: int = _f(1, "Micro-batches accumulated into one optimiser step.")
    max_grad_norm: float = _f(1.0, "Clip the global gradient norm to this; 0 disables clipping.")
    seed: int = _f(42, "Seeds weight init of new heads, shuffling and dropout.")
    eval_every: int = _f(0, "Evaluate every N optimiser steps (0: only at the end).")
    early_stopping_patience: int = _f(
        0,
        "Stop after N evaluations without improvement (0: never); the run then ends on the weights of "
        "its best evaluation.",
    )
    early_stopping_metric: str = _f("", "Metric watched by early stopping; empty means the method's default.")
    checkpoint_every: int = _f(
        0, "Write a resumable checkpoint every N steps (0: only at the end or on stop)."
    )
    keep_checkpoints: int = _f(
        2, "Step checkpoints kept while training; all go once the final one is written."
    )
    lora: bool | dict = field(
        default=False,
        metadata={"help": "Train LoRA adapters via peft instead of all weights: true, or LoraConfig fields."},
    )
    tie_handling: Literal["exclude", "smooth"] = _f(
        "exclude", "Tied pairs: leave them out of pairwise losses, or train them towards P=0.5."
    )
    label_smoothing: float = _f(0.0, "Probability that a (non-tie) label is flipped, in [0, 0.5).")
    disable_dropout: bool = _f(True, "Switch dropout off in the backbone (as TRL does by default).")
    group_by_length: bool = _f(True, "Batch pairs of similar length together to cut padding.")
    device: Literal["auto", "cpu", "cuda", "mps"] = _f(
        "auto", "Where to train; auto picks cuda, then mps, then cpu."
    )
    precision: Literal["auto", "fp32", "bf16"] = _f(
        "auto", "auto means bf16 autocast on CUDA, fp32 elsewhere."
    )

    kind: typing.ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def field_docs(cls) -> list[dict[str, Any]]:
        """Each field's name, type (as config errors word it), default and help, in order.

        >>> RLOOConfig.field_docs()[-1]["name"], RLOOConfig.field_docs()[-1]["type"]
        ('advantage', "choice among 'rloo', 'grpo'")
        """
        hints = typing.get_type_hints(cls)
        return [
            {
                "name": f.name,
                "type": _describe(hints[f.name]),
                "default": f.default,
                "help": f.metadata.get("help", ""),
            }
            for f in dataclasses.fields(cls)
        ]

    def validate(self) -> None:
        _check_types(self)
        positive = ["max_length", "batch_size", "grad_accum"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}.")
        non_negative = [
            "eval_batch_size",
            "max_steps",
            "weight_decay",
            "max_grad_norm",
            "eval_every",
            "early_stopping_patience",
            "checkpoint_every",
            "keep_checkpoints",
        ]
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}.")
        if not self.model.strip():
            raise ConfigError("model is required (a short name, a directory or a checkpoint).")
        if self.max_steps == 0 and not self.epochs > 0:
            raise ConfigError("epochs must be positive when max_steps is 0.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr!r}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}.")
        if not 0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing!r}.")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}.")
        if self.early_stopping_patience and not self.eval_every:
            raise ConfigError("early_stopping_patience needs eval_every > 0 (and eval examples).")
        if isinstance(self.lora, dict):
            allowed = {"r", "lora_alpha", "lora_dropout", "target_modules", "bias"}
            unknown = sorted(set(self.lora) - allowed)
            if unknown:
                raise ConfigError(
                    f"Unknown lora keys: {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})."
                )


@dataclass
class RewardConfig(TrainingConfig):
    """A scalar reward model trained with the Bradley-Terry loss."""

    pooling: Literal["auto", "cls", "mean", "last"] = _f(
        "auto",
        "How a sequence becomes one vector: auto = mean for encoders, last non-pad token for decoders.",
    )
    use_margin: bool = _f(True, "Subtract each pair's margin (from annotator strength) inside the loss.")
    center_rewards_coefficient: float = _f(
        0.0, "Penalty on (r_chosen + r_rejected)^2 keeping rewards centred."
    )
    split_by_length: bool = _f(
        True,
        "On CPU, run each batch through the backbone in length-sorted chunks padded to their own "
        "longest sequence (same rewards, less padding to compute).",
    )

    kind: typing.ClassVar[str] = "reward_model"

    def validate(self) -> None:
        super().validate()
        if self.center_rewards_coefficient < 0:
            raise ConfigError("center_rewards_coefficient must not be negative.")


@dataclass
class DPOConfig(TrainingConfig):
    """Direct preference optimisation of a causal LM against its frozen starting point."""

    lr: float = _f(5e-7, "Peak learning rate of AdamW.")
    beta: float = _f(0.1, "Strength of the KL anchor to the reference model.")
    loss_type: Literal["sigmoid", "ipo"] = _f(
        "sigmoid", "sigmoid = DPO, ipo = identity preference optimisation."
    )
    max_prompt_length: int = _f(0, "Cap on prompt tokens before the response (0: only max_length applies).")
    reference_model: str = _f("", "Frozen reference; empty means the starting weights of `model`.")
    share_prompt: bool = _f(
        True, "Run each pair's prompt once, with both replies after it in one packed sequence (causal LMs)."
    )

    kind: typing.ClassVar[str] = "dpo"

    def validate(self) -> None:
        super().validate()
        if not self.beta > 0:
            raise ConfigError(f"beta must be positive, got {self.beta!r}.")
        if self.max_prompt_length < 0:
            raise ConfigError("max_prompt_length must not be negative.")


@dataclass
class ContrastiveConfig(TrainingConfig):
    """An embedding model (or a causal LM, for contrastive_lm) trained with a contrastive objective."""

    objective: Literal["margin_ranking", "info_nce", "contrastive_lm"] = _f(
        "info_nce",
        "margin_ranking and info_nce train prompt/response embeddings; contrastive_lm a causal LM.",
    )
    margin: float = _f(0.2, "m in max(0, m - s+ + s-) for margin_ranking.")
    temperature: float = _f(0.05, "tau of InfoNCE.")
    pooling: Literal["auto", "cls", "mean", "last"] = _f("auto", "Embedding pooling (auto: mean).")
    share_prompt: bool = _f(True, "contrastive_lm: run each prompt once for both replies (packed sequence).")

    kind: typing.ClassVar[str] = "contrastive"

    def validate(self) -> None:
        super().validate()
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature!r}.")
        if self.margin < 0:
            raise ConfigError("margin must not be negative.")
        if self.tie_handling != "exclude":
            raise ConfigError(
                "Contrastive objectives have no target for a tie: tie_handling must be 'exclude'."
            )


@dataclass
class RLConfig(TrainingConfig):
    """Online reinforcement learning of a causal LM against a reward: what rloo, ppo and soft_q share.

    One optimiser step trains on `batch_size` prompts x `k` samples each; `max_steps` counts
    optimiser steps (ppo runs several per rollout).
    """

    lr: float = _f(1e-5, "Peak learning rate of AdamW.")
    lora: bool | dict = field(
        default=True,
        metadata={
            "help": "LoRA adapters via peft (true: the default, or LoraConfig fields); false: all weights."
        },
    )
    group_by_length: bool = _f(False, "Unused by online methods: prompts are drawn in shuffled order.")
    reward_model: str = _f(
        "", "Reward model checkpoint scoring (prompt, response); run_rl also takes a callable."
    )
    k: int = _f(4, "Samples per prompt in each rollout.")
    max_new_tokens: int = _f(64, "Response length limit when sampling.")
    temperature: float = _f(1.0, "Sampling temperature of rollouts (top-k and top-p off: on-policy).")
    beta: float = _f(0.05, "Coefficient of the KL(policy || reference) penalty in the reward.")
    missing_eos_penalty: float = _f(
        0.0, "Subtracted from the score of a response cut at max_new_tokens (0: no penalty)."
    )
    whiten_rewards: bool = _f(False, "Normalise each rollout's scores to mean 0, std 1 before the KL term.")

    def validate(self) -> None:
        super().validate()
        if self.k < 1 or self.max_new_tokens < 1:
            raise ConfigError("k and max_new_tokens must be at least 1.")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive (rollouts sample), got {self.temperature!r}.")
        if self.beta < 0 or self.missing_eos_penalty < 0:
            raise ConfigError("beta and missing_eos_penalty must not be negative.")
        if self.tie_handling != "exclude" or self.label_smoothing:
            raise ConfigError("tie_handling and label_smoothing do not apply to online RL.")
        if self.early_stopping_patience:
            raise ConfigError("RL has no held-out pairs to stop on: early_stopping_patience must be 0.")
        if self.max_new_tokens >= self.max_length:
            raise ConfigError("max_new_tokens must leave room for the prompt within max_length.")


@dataclass
class RLOOConfig(RLConfig):
    """REINFORCE with a leave-one-out baseline over the k samples of each prompt (or GRPO's)."""

    k: int = _f(4, "Samples per prompt; the baseline of each is the mean reward of the other k - 1.")
    advantage: Literal["rloo", "grpo"] = _f(
        "rloo", "rloo: reward minus the others' mean; grpo: (reward - group mean) / group std."
    )

    kind: typing.ClassVar[str] = "rloo"

    def validate(self) -> None:
        super().validate()
        if self.k < 2:
            raise ConfigError("rloo needs k >= 2 samples per prompt for its baseline.")


@dataclass
class PPOConfig(RLConfig):
    """PPO: clipped surrogate, value head, GAE, per-token KL penalty, several epochs per rollout."""

    k: int = _f(1, "Samples per prompt in each rollout.")
    ppo_epochs: int = _f(4, "Passes over each rollout batch.")
    num_minibatches: int = _f(1, "Optimiser steps per pass over a rollout batch.")
    clip_range: float = _f(0.2, "epsilon of the clipped ratio.")
    clip_range_value: float = _f(0.2, "Values move at most this far from the rollout's (0: no clipping).")
    vf_coef: float = _f(0.5, "Weight of the value loss.")
    gamma: float = _f(1.0, "Discount over response tokens.")
    lam: float = _f(0.95, "GAE lambda.")
    whiten_advantages: bool = _f(True, "Normalise advantages over each rollout's response tokens.")
    adaptive_kl: bool = _f(False, "Adapt beta towards target_kl (Ziegler et al. 2019) instead of fixing it.")
    target_kl: float = _f(6.0, "Sequence KL the adaptive controller aims for.")
    kl_horizon: int = _f(10000, "Samples over which the adaptive controller moves beta by at most 20%.")

    kind: typing.ClassVar[str] = "ppo"

    def validate(self) -> None:
        super().validate()
        if self.ppo_epochs < 1 or self.num_minibatches < 1:
            raise ConfigError("ppo_epochs and num_minibatches must be at least 1.")
        if self.num_minibatches > self.batch_size * self.k:
            raise ConfigError("num_minibatches cannot exceed the samples of a rollout (batch_size x k).")
        if not self.clip_range > 0 or self.clip_range_value < 0 or self.vf_coef < 0:
            raise ConfigError("clip_range must be positive; clip_range_value and vf_coef not negative.")
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise ConfigError("gamma and lam must be in [0, 1].")
        if self.adaptive_kl and not (self.target_kl > 0 and self.kl_horizon > 0):
            raise ConfigError("adaptive_kl needs target_kl > 0 and kl_horizon > 0.")


@dataclass
class SoftQConfig(RLConfig):
    """Experimental: token-level soft Q-learning with the policy's logits read as Q-values."""

    k: int = _f(2, "Samples per prompt in each rollout.")
    beta: float = _f(0.1, "Temperature of the soft Bellman backup; also the KL weight to the reference.")
    lam: float = _f(0.9, "Mix of the sampled soft return in the target (0: one-step backup; 1: Monte Carlo).")

    kind: typing.ClassVar[str] = "soft_q"

    def validate(self) -> None:
        super().validate()
        if not self.beta > 0:
            raise ConfigError("soft_q needs beta > 0 (its temperature).")
        if not 0 <= self.lam <= 1:
            raise ConfigError("lam must be in [0, 1].")


CONFIG_CLASSES: dict[str, type[TrainingConfig]] = {
    "reward_model": RewardConfig,
    "dpo": DPOConfig,
    "contrastive": ContrastiveConfig,
    "rloo": RLOOConfig,
    "ppo": PPOConfig,
    "soft_q": SoftQConfig,
}
RL_KINDS = ("rloo", "ppo", "soft_q")


def config_from_dict(kind: str, data: dict[str, Any] | TrainingConfig) -> TrainingConfig:
    """Build and validate the config for `kind`; unknown keys and bad values raise ConfigError."""
    if kind not in CONFIG_CLASSES:
        raise ConfigError(f"Unknown training kind {kind!r}; expected one of {', '.join(CONFIG_CLASSES)}.")
    cls = CONFIG_CLASSES[kind]
    if isinstance(data, TrainingConfig):
        data = data.to_dict()
    if not isinstance(data, dict):
        raise ConfigError(f"A config must be a JSON object, got {type(data).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"Unknown {kind} config keys: {', '.join(unknown)}.")
    try:
        cfg = cls(**data)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ConfigError(str(exc)) from exc
    cfg.validate()
    return cfg


def config_from_json(kind: str, text: str) -> TrainingConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Config is not valid JSON: {exc}") from exc
    return config_from_dict(kind, data)


def _check_types(cfg: TrainingConfig) -> None:
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not _matches(value, hints[f.name]):
            raise ConfigError(f"{f.name}: {value!r} is not a valid {_describe(hints[f.name])}.")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is dict:
        return isinstance(value, dict)
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "choice among " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))
