"""Online RL objectives as small pure functions over tensors: advantages, GAE, the policy losses.

Shapes: P = prompts in a rollout, K = samples per prompt, N = P * K sequences (grouped by prompt:
rows i * K ... i * K + K - 1 share prompt i), T = response tokens (padded), V = vocabulary.
`mask` is 1.0 on real response tokens, 0.0 on padding after the end of a response.
"""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """x, mask: same shape -> scalar mean over mask."""
    return (x * mask).sum() / mask.sum().clamp_min(1)


def whiten(x: Tensor, mask: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over the masked entries (all when mask is None); masked-out entries stay 0."""
    if mask is None:
        return (x - x.mean()) / (x.std(unbiased=False) + eps)
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def rloo_advantages(rewards: Tensor, k: int) -> Tensor:
    """rewards: (N,) grouped by prompt -> (N,): each reward minus the mean of the other k - 1."""
    groups = rewards.view(-1, k)  # (P, K)
    others = (groups.sum(1, keepdim=True) - groups) / (k - 1)  # (P, K)
    return (groups - others).reshape(-1)


def grpo_advantages(rewards: Tensor, k: int, *, eps: float = 1e-4) -> Tensor:
    """rewards: (N,) grouped by prompt -> (N,): (reward - group mean) / (group std + eps)."""
    groups = rewards.view(-1, k)  # (P, K)
    mean = groups.mean(1, keepdim=True)
    std = groups.std(1, keepdim=True, unbiased=k > 1) if k > 1 else torch.zeros_like(mean)
    return ((groups - mean) / (std + eps)).reshape(-1)


def reinforce_loss(logps: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """-mean_i A_i * sum_t log pi(y_it): logps, mask (N, T) with grad through logps; advantages (N,)
    constants. Its gradient is the REINFORCE estimate of the gradient of the expected reward."""
    return -(advantages.detach() * (logps * mask).sum(1)).mean()


def gae(rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over response tokens.

    rewards, values, mask: (N, T); a sequence ends at its last masked token (value 0 after it).
    Returns advantages (N, T) and returns = advantages + values (N, T), zero on padding.
    """
    n, t = rewards.shape
    adv = torch.zeros_like(rewards)
    last = torch.zeros(n, dtype=rewards.dtype, device=rewards.device)  # (N,) A_{t+1}
    for i in reversed(range(t)):
        m = mask[:, i]
        next_v = values[:, i + 1] * mask[:, i + 1] if i + 1 < t else torch.zeros_like(last)
        delta = rewards[:, i] + gamma * next_v - values[:, i]
        last = (delta + gamma * lam * last * (mask[:, i + 1] if i + 1 < t else 0)) * m
        adv[:, i] = last
    return adv, (adv + values) * mask


def ppo_policy_loss(
    logps: Tensor, old_logps: Tensor, advantages: Tensor, mask: Tensor, *, clip_range: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Clipped surrogate: mean over tokens of max(-A r, -A clip(r, 1 - e, 1 + e)), r = pi / pi_old.

    All (N, T). Returns (loss, clip fraction, approximate KL(pi_old || pi)), the last two detached.
    """
    ratio = torch.exp(logps - old_logps)  # (N, T)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_range, 1 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_frac = masked_mean(((ratio - 1).abs() > clip_range).float(), mask)
        approx_kl = masked_mean(0.5 * (logps - old_logps) ** 2, mask)
    return loss, clip_frac, approx_kl


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, *, clip_range: float
) -> Tensor:
    """0.5 * mean of max((v - R)^2, (clip(v, v_old +- c) - R)^2); without clipping when c = 0. (N, T)."""
    err = (values - returns) ** 2
    if clip_range > 0:
        clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
        err = torch.maximum(err, (clipped - returns) ** 2)
    return 0.5 * masked_mean(err, mask)


def soft_q_loss(
    logits: Tensor,
    tokens: Tensor,
    ref_logits: Tensor,
    ref_lse: Tensor,
    rewards: Tensor,
    mask: Tensor,
    *,
    beta: float,
    lam: float = 0.0,
) -> Tensor:
    """Token-level soft Q-learning with the policy's logits read as Q-values over the reference.

    Q(s, a) / beta = logits(s, a) - ref_logits(s, a), so that the policy softmax(logits) is the
    optimum pi_ref * exp(Q / beta) of reward - beta * KL(pi || pi_ref), and V(s) / beta =
    logsumexp(logits(s, .)) - logsumexp(ref_logits(s, .)). The soft Bellman equation then reads
        logits(s_t, a_t) - ref_logits(s_t, a_t) = r_t / beta + V(s_{t+1}) / beta,
    V = 0 after a sequence's last token. Both sides are 0 at the starting weights, so only the reward
    moves the policy. `lam` mixes in the sampled soft return, as TD(lambda) does, so that a reward
    given at the end of a response reaches its early tokens in one step:
        G_t = r_t / beta + (1 - lam) V(s_{t+1}) / beta + lam (G_{t+1} - log pi/pi_ref(a_{t+1} | s_{t+1})).
    The target side is detached (a semi-gradient, no target network).

    logits: (N, T, V); tokens, ref_logits (the reference's logit of each token), ref_lse (its
    logsumexp at each position), rewards, mask: (N, T). Returns 0.5 * mean squared Bellman error.
    """
    q = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - ref_logits  # (N, T)
    with torch.no_grad():
        lse = torch.logsumexp(logits.float(), dim=-1)  # (N, T)
        soft_v = (lse - ref_lse) * mask  # (N, T): V(s_t) / beta
        log_ratio = (q - lse + ref_lse) * mask  # (N, T): log pi / pi_ref of the sampled tokens
        target = torch.zeros_like(q)
        after = torch.zeros_like(q[:, 0])  # (N,) G_{t+1} - log_ratio_{t+1}, 0 past the end
        next_v = torch.zeros_like(after)
        for t in reversed(range(q.shape[1])):
            target[:, t] = rewards[:, t] / beta + (1 - lam) * next_v + lam * after
            after = (target[:, t] - log_ratio[:, t]) * mask[:, t]
            next_v = soft_v[:, t]
    return 0.5 * masked_mean((q - target) ** 2, mask)


def adaptive_kl_coef(coef: float, kl: float, *, target: float, horizon: int, n_samples: int) -> float:
    """Ziegler et al. (2019): move beta by at most 20% per horizon towards the target KL."""
    error = max(-0.2, min(0.2, kl / target - 1))
    return coef * (1 + error * n_samples / horizon)
