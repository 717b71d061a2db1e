"""Rollouts for online RL: sample k responses per prompt from the current policy (batched, with a KV
cache), score them with a reward function, and compute the per-token log-probs of the policy and of
the frozen reference.

A reward function takes the prompts (one per response, as given: a conversation or a string) and the
decoded responses and returns one float per response. In production it is a reward model
(`scorer_reward`); tests pass any callable. Its output is turned into a tensor that never requires
grad: gradients reach the policy only through the log-probs of the sampled tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

RewardFn = Callable[[Sequence[Any], Sequence[str]], Sequence[float]]


@dataclass
class Samples:
    """One rollout's sequences: left-padded prompts followed by right-padded responses."""

    input_ids: Tensor  # (N, L + T)
    attention_mask: Tensor  # (N, L + T)
    prompt_width: int  # L: every response starts at column L
    response_mask: Tensor  # (N, T) float, 1.0 on response tokens up to and including EOS
    truncated: Tensor  # (N,) bool: no EOS within the limit

    @property
    def responses(self) -> Tensor:
        return self.input_ids[:, self.prompt_width :]  # (N, T)

    @property
    def lengths(self) -> Tensor:
        return self.response_mask.sum(1)  # (N,)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token id lists -> (P, L) ids and mask, padded on the left so every row ends at column L."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            ids[row, width - len(p) :] = torch.as_tensor(p)
            mask[row, width - len(p) :] = 1
    return ids, mask


@torch.no_grad()
def sample(
    lm: nn.Module,
    prompts: Sequence[Sequence[int]],
    *,
    k: int,
    max_new_tokens: int,
    temperature: float,
    eos_id: int | None,
    pad_id: int,
    device: torch.device,
    top_p: float = 1.0,
) -> Samples:
    """k samples of each prompt (rows grouped by prompt), drawn from the global torch RNG so that a
    resumed run draws exactly what an uninterrupted one would. Temperature 0 decodes greedily."""
    ids, mask = left_pad([p for p in prompts for _ in range(k)], pad_id)
    ids, mask = ids.to(device), mask.to(device)
    if temperature > 0:
        decoding = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": top_p}
    else:
        decoding = {"do_sample": False}
    out = lm.generate(
        input_ids=ids,
        attention_mask=mask,
        **decoding,
        max_new_tokens=max_new_tokens,
        min_new_tokens=1,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_cache=True,
    )
    width = ids.shape[1]
    resp = out[:, width:]  # (N, T)
    is_eos = torch.zeros_like(resp, dtype=torch.bool) if eos_id is None else resp == eos_id
    # A token is part of the response up to and including the first EOS.
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # EOS seen strictly before t
    resp_mask = (before == 0).float()  # (N, T)
    truncated = ~is_eos.any(dim=1)
    resp = torch.where(resp_mask.bool(), resp, torch.full_like(resp, pad_id))
    full_ids = torch.cat([ids, resp], dim=1)
    full_mask = torch.cat([mask, resp_mask.long()], dim=1)
    return Samples(full_ids, full_mask, width, resp_mask, truncated)


def response_logits(lm: nn.Module, samples: Samples, *, hidden: bool = False) -> tuple[Tensor, Tensor | None]:
    """The LM's logits predicting each response token, (N, T, V), and (with `hidden`) the last
    hidden state at the same positions, (N, T, H). Position ids skip the left padding."""
    positions = (samples.attention_mask.cumsum(1) - 1).clamp_min(0)  # (N, L + T)
    inputs = {
        "input_ids": samples.input_ids,
        "attention_mask": samples.attention_mask,
        "position_ids": positions,
        "use_cache": False,
        "output_hidden_states": hidden,
    }
    t = samples.input_ids.shape[1] - samples.prompt_width
    try:
        # The vocabulary projection is the largest matmul of a small LM: run it on the response only.
        out = lm(**inputs, logits_to_keep=t + 1)
    except TypeError:  # an architecture without logits_to_keep
        out = lm(**inputs)
    # The state at column c predicts the token at c + 1: columns L - 1 ... L + T - 2.
    logits = out.logits[:, -(t + 1) : -1].float()  # (N, T, V)
    states = out.hidden_states[-1][:, -(t + 1) : -1] if hidden else None
    return logits, states


def token_logps(logits: Tensor, tokens: Tensor) -> Tensor:
    """logits (N, T, V), tokens (N, T) -> log pi(token) (N, T)."""
    return torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy(logits: Tensor, mask: Tensor) -> Tensor:
    """Mean per-token entropy of the policy over response tokens; logits (N, T, V), mask (N, T)."""
    logp = torch.log_softmax(logits, -1)
    ent = -(logp.exp() * logp).sum(-1)  # (N, T)
    return (ent * mask).sum() / mask.sum().clamp_min(1)


def score(
    reward_fn: RewardFn, prompts: Sequence[Any], responses: Sequence[str], *, device: torch.device
) -> Tensor:
    """The reward function's scores as a (N,) float tensor outside autograd."""
    values = [float(v) for v in reward_fn(list(prompts), list(responses))]
    if len(values) != len(responses):
        raise ValueError(f"The reward function returned {len(values)} scores for {len(responses)} responses.")
    return torch.tensor(values, dtype=torch.float32, device=device)


def scorer_reward(scorer) -> RewardFn:
    """A reward function from a serving.RewardScorer: each response scored against its prompt."""

    def reward(prompts: Sequence[Any], responses: Sequence[str]) -> list[float]:
        out: list[float] = [0.0] * len(responses)
        groups: dict[int, list[int]] = {}
        keys: dict[int, Any] = {}
        for i, p in enumerate(prompts):  # score each prompt's responses in one batch
            key = id(p)
            groups.setdefault(key, []).append(i)
            keys[key] = p
        for key, rows in groups.items():
            for row, value in zip(rows, scorer.score(keys[key], [responses[r] for r in rows]), strict=True):
                out[row] = value
        return out

    return reward
