"""Online RL of a causal LM against a reward: rloo, ppo and soft_q (experimental) as trainer Tasks.

Each rollout samples `k` responses to each of `batch_size` training prompts from the current policy,
scores them (reward function minus beta x KL to the reference, an optional penalty for responses cut
at the length limit, optional whitening), and computes the reference log-probs once for the whole
batch: with LoRA by switching the adapter off, so no second copy of the model sits in memory. rloo
and soft_q take one optimiser step per rollout; ppo takes ppo_epochs x num_minibatches.

The rollout being trained on, its position and the adaptive KL coefficient are saved with every
step checkpoint (under `rollout.` in model.safetensors) and the sampling RNG by the trainer, so a
run resumed at any step continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import backbone as bb
from . import rl_objectives as obj
from . import rollouts as ro
from .generation import render_prompt
from .trainer import autocast_factory

BUFFER_PREFIX = "rollout."


class PolicyWithValue(nn.Module):
    """The policy LM (a PeftModel under LoRA) and, for ppo, a scalar value head on its last hidden state."""

    def __init__(self, lm: nn.Module, *, value_head: bool):
        super().__init__()
        self.lm = lm
        width = lm.config.hidden_size
        self.value_head = nn.Linear(width, 1) if value_head else None
        if self.value_head is not None:
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    def forward(self, samples: ro.Samples) -> tuple[Tensor, Tensor | None]:
        """-> logits (N, T, V) predicting each response token, values (N, T) or None."""
        logits, states = ro.response_logits(self.lm, samples, hidden=self.value_head is not None)
        values = self.value_head(states.float()).squeeze(-1) if self.value_head is not None else None
        return logits, values


def tokenize_prompts(tokenizer, prompts: Sequence[Any], *, max_prompt_tokens: int) -> list[list[int]]:
    """Each prompt (a conversation or a string) as the token ids the policy continues; a long
    prompt loses its start, so the latest turns stay."""
    out = []
    for p in prompts:
        text = render_prompt(tokenizer, p) if isinstance(p, list) else str(p)
        ids = tokenizer(text, add_special_tokens=not isinstance(p, list))["input_ids"]
        out.append(ids[-max_prompt_tokens:] if max_prompt_tokens else ids)
    return out


class RLTask:
    """rloo / ppo / soft_q (see trainer.Task). `train_size` is the number of training prompts."""

    default_metric = "reward"
    greater_is_better = True

    def __init__(self, cfg, lm: nn.Module, tokenizer, prompts: Sequence[Any], reward_fn: ro.RewardFn):
        if not prompts:
            raise ValueError("No training prompts; nothing to roll out.")
        self.cfg, self.kind = cfg, cfg.kind
        self.tokenizer = tokenizer
        self.prompts = list(prompts)
        self.prompt_ids = tokenize_prompts(
            tokenizer, self.prompts, max_prompt_tokens=cfg.max_length - cfg.max_new_tokens
        )
        self.reward_fn = reward_fn
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.eos = tokenizer.eos_token_id
        self.peft = bb.apply_lora(lm, cfg.lora, causal=True) if cfg.lora else None
        policy_lm = self.peft if self.peft is not None else lm
        # Full fine-tuning needs the starting weights as a frozen copy; LoRA switches its adapter off.
        self.ref_lm = None if self.peft is not None else copy.deepcopy(lm).requires_grad_(False).eval()
        self.model = PolicyWithValue(policy_lm, value_head=cfg.kind == "ppo")
        self.module = self.model
        self.eval = None
        self.kl_coef = float(cfg.beta)
        self.updates = self._updates_per_rollout()
        self.buffer: dict[str, Tensor] | None = None  # the rollout being trained on
        self.used = 0  # optimiser steps taken on it
        self.rollouts = 0

    @classmethod
    def build(cls, cfg, prompts: Sequence[Any], reward_fn: ro.RewardFn) -> RLTask:
        path = bb.resolve(cfg.model)
        return cls(cfg, bb.load_causal_lm(path), bb.load_tokenizer(path), prompts, reward_fn)

    def _updates_per_rollout(self) -> int:
        if self.cfg.kind == "ppo":
            return self.cfg.ppo_epochs * self.cfg.num_minibatches
        return 1

    # ---- trainer.Task
    def train_size(self) -> int:
        return len(self.prompts)

    def train_lengths(self) -> list[int]:
        return [len(p) for p in self.prompt_ids]

    def has_eval(self) -> bool:
        return False

    def prepare(self, device) -> None:
        if self.ref_lm is not None:
            self.ref_lm.to(device)

    def evaluate(self, device, autocast) -> dict[str, float]:  # pragma: no cover - has_eval is False
        return {}

    def batch(self, indices: list[int], device) -> dict[str, Tensor]:
        """The next minibatch: a fresh rollout on the step's prompts when the current one is used up."""
        if self.buffer is None or self.used >= self.updates:
            self.buffer = self._rollout(indices, device)
            self.used, self.rollouts = 0, self.rollouts + 1
        rows = self._minibatch_rows(self.used)
        self.used += 1
        out: dict[str, Any] = {
            k: v[rows.to(v.device)] for k, v in self.buffer.items() if isinstance(v, Tensor) and v.dim() > 0
        }
        out["stats"] = self.buffer["stats"]
        return out

    def _minibatch_rows(self, used: int) -> Tensor:
        n = self.buffer["input_ids"].shape[0]
        if self.updates == 1:
            return torch.arange(n)
        epoch, part = divmod(used, self.cfg.num_minibatches)
        # Its own generator: the global RNG belongs to sampling.
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.rollouts * 1_009 + epoch)
        perm = torch.randperm(n, generator=g)
        return perm.tensor_split(self.cfg.num_minibatches)[part]

    # ---- rollouts
    @torch.no_grad()
    def _rollout(self, indices: list[int], device) -> dict[str, Tensor]:
        cfg = self.cfg
        started = time.monotonic()
        was_training = self.model.training
        self.model.eval()
        samples = ro.sample(
            self.model.lm,
            [self.prompt_ids[i] for i in indices],
            k=cfg.k,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            eos_id=self.eos,
            pad_id=self.pad,
            device=device,
        )
        mask, tokens = samples.response_mask, samples.responses
        autocast = autocast_factory(cfg, torch.device(device))
        with autocast():
            logits, values = self.model(samples)
        logits = logits / cfg.temperature
        old_logps = ro.token_logps(logits, tokens) * mask  # (N, T)
        ent = ro.entropy(logits, mask)
        with self._reference() as ref, autocast():
            ref_logits, _ = ro.response_logits(ref, samples)
        values = values.float() if values is not None else None
        ref_logits = ref_logits / cfg.temperature
        ref_logps = ro.token_logps(ref_logits, tokens) * mask  # (N, T)
        self.model.train(was_training)

        texts = self.tokenizer.batch_decode(tokens.masked_fill(mask == 0, self.pad), skip_special_tokens=True)
        prompts = [self.prompts[i] for i in indices for _ in range(cfg.k)]
        scores = ro.score(self.reward_fn, prompts, [t.strip() for t in texts], device=device)  # (N,)
        raw_scores = scores.clone()
        if cfg.missing_eos_penalty:
            scores = scores - cfg.missing_eos_penalty * samples.truncated.float()
        if cfg.whiten_rewards and scores.numel() > 1:
            scores = obj.whiten(scores)
        kl_tokens = (old_logps - ref_logps) * mask  # (N, T): log pi / pi_ref at the sampled tokens
        kl = kl_tokens.sum(1)  # (N,)
        buffer = {
            "input_ids": samples.input_ids,
            "attention_mask": samples.attention_mask,
            "response_mask": mask,
            "old_logps": old_logps,
            "ref_logps": ref_logps,
            "prompt_width": torch.tensor(samples.prompt_width),
        }
        last = (mask.sum(1).long() - 1).clamp_min(0)  # (N,) the last response token
        rows = torch.arange(mask.shape[0], device=mask.device)
        if cfg.kind == "rloo":
            total = scores - self.kl_coef * kl  # (N,)
            adv_fn = obj.grpo_advantages if cfg.advantage == "grpo" else obj.rloo_advantages
            buffer["advantages"] = adv_fn(total, cfg.k)
            adv_stats = buffer["advantages"]
        elif cfg.kind == "ppo":
            rewards = -self.kl_coef * kl_tokens
            rewards[rows, last] += scores
            adv, returns = obj.gae(rewards, values, mask, gamma=cfg.gamma, lam=cfg.lam)
            if cfg.whiten_advantages:
                adv = obj.whiten(adv, mask)
            buffer.update(advantages=adv, returns=returns, old_values=values * mask)
            adv_stats = adv[mask.bool()]
        else:  # soft_q: the KL to the reference is in the Bellman backup itself
            rewards = torch.zeros_like(mask)
            rewards[rows, last] = scores
            buffer["rewards"] = rewards
            buffer["ref_logits"] = ref_logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (N, T)
            buffer["ref_lse"] = torch.logsumexp(ref_logits, dim=-1)  # (N, T)
            adv_stats = scores
        seconds = max(time.monotonic() - started, 1e-9)
        buffer["stats"] = {
            "reward": raw_scores.mean().item(),
            "reward_std": raw_scores.std(unbiased=False).item(),
            "kl": kl.mean().item(),
            "kl_coef": self.kl_coef,
            "entropy": ent.item(),
            "response_length": samples.lengths.mean().item(),
            "truncated_fraction": samples.truncated.float().mean().item(),
            "advantage_mean": adv_stats.mean().item(),
            "advantage_std": adv_stats.std(unbiased=False).item() if adv_stats.numel() > 1 else 0.0,
            "samples_per_second": mask.shape[0] / seconds,
        }
        if cfg.kind == "ppo" and cfg.adaptive_kl:
            self.kl_coef = obj.adaptive_kl_coef(
                self.kl_coef,
                kl.mean().item(),
                target=cfg.target_kl,
                horizon=cfg.kl_horizon,
                n_samples=len(kl),
            )
        return buffer

    @contextlib.contextmanager
    def _reference(self):
        if self.peft is not None:
            with self.peft.disable_adapter():
                yield self.peft
        else:
            yield self.ref_lm

    # ---- loss
    def loss(self, module, batch) -> tuple[Tensor, dict[str, float]]:
        cfg = self.cfg
        samples = ro.Samples(
            batch["input_ids"],
            batch["attention_mask"],
            int(self.buffer["prompt_width"]),
            batch["response_mask"],
            torch.zeros(0),
        )
        mask, tokens = batch["response_mask"], samples.responses
        logits, values = module(samples)
        logits = logits / cfg.temperature
        logps = ro.token_logps(logits, tokens)  # (N, T)
        stats = dict(batch["stats"])
        if cfg.kind == "rloo":
            loss = obj.reinforce_loss(logps, batch["advantages"], mask)
        elif cfg.kind == "ppo":
            pg, clip_frac, approx_kl = obj.ppo_policy_loss(
                logps, batch["old_logps"], batch["advantages"], mask, clip_range=cfg.clip_range
            )
            vf = obj.value_loss(
                values, batch["old_values"], batch["returns"], mask, clip_range=cfg.clip_range_value
            )
            loss = pg + cfg.vf_coef * vf
            stats.update(
                policy_loss=pg.item(),
                value_loss=vf.item(),
                clip_fraction=clip_frac.item(),
                approx_kl=approx_kl.item(),
            )
        else:
            loss = obj.soft_q_loss(
                logits,
                tokens,
                batch["ref_logits"],
                batch["ref_lse"],
                batch["rewards"],
                mask,
                beta=cfg.beta,
                lam=cfg.lam,
            )
        return loss, stats

    # ---- saving
    def weights(self, *, final: bool) -> dict[str, Tensor]:
        if final:  # a plain causal LM (adapters merged, no value head): what generation and DPO load
            if self.peft is not None:
                lm = self.peft.merge_and_unload()
                self.model.lm, self.peft = lm, None
            return self.model.lm.state_dict()
        state = bb.trainable_state(self.model)
        if self.buffer is not None:
            for k, v in self.buffer.items():
                if isinstance(v, Tensor):
                    state[BUFFER_PREFIX + k] = v.detach().cpu()
        state[BUFFER_PREFIX + "position"] = torch.tensor(
            [self.used, self.rollouts, self.buffer is not None], dtype=torch.long
        )
        state[BUFFER_PREFIX + "kl_coef"] = torch.tensor(self.kl_coef, dtype=torch.float64)
        if self.buffer is not None:
            state[BUFFER_PREFIX + "stats_json"] = _encode_stats(self.buffer["stats"])
        return state

    def load_weights(self, tensors: dict[str, Tensor]) -> None:
        keys = [k for k in tensors if k.startswith(BUFFER_PREFIX)]
        saved = {k[len(BUFFER_PREFIX) :]: tensors.pop(k) for k in keys}
        bb.load_partial_state(self.model, tensors)
        if not saved:
            return
        self.used, self.rollouts, has_buffer = (int(x) for x in saved.pop("position"))
        self.kl_coef = float(saved.pop("kl_coef"))
        stats = _decode_stats(saved.pop("stats_json")) if "stats_json" in saved else {}
        device = next(self.model.parameters()).device
        self.buffer = {k: v.to(device) for k, v in saved.items()} if has_buffer else None
        if self.buffer is not None:
            self.buffer["stats"] = stats

    def save_files(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory)
        lm = self.model.lm.get_base_model() if self.peft is not None else self.model.lm
        bb.save_model_config(lm.config, directory)
        if getattr(lm, "generation_config", None) is not None:
            lm.generation_config.save_pretrained(directory)

    def meta(self) -> dict:
        return {"weights_prefix": "", "lora": bool(self.cfg.lora), "method": self.cfg.kind}


def _encode_stats(stats: dict[str, float]) -> Tensor:
    import json

    return torch.tensor(list(json.dumps(stats).encode()), dtype=torch.uint8)


def _decode_stats(t: Tensor) -> dict[str, float]:
    import json

    return json.loads(bytes(t.tolist()).decode())
