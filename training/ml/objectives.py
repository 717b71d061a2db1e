"""Preference objectives as small pure functions over tensors. Each returns a scalar (weighted) mean.

Shapes: B = pairs in the batch, D = embedding width, K = negatives per positive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _weighted_mean(losses: Tensor, weights: Tensor | None) -> Tensor:
    # losses, weights: (B,)
    if weights is None:
        return losses.mean()
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)


def bradley_terry_loss(
    chosen: Tensor,
    rejected: Tensor,
    *,
    margin: Tensor | None = None,
    label_smoothing: float | Tensor = 0.0,
    weights: Tensor | None = None,
) -> Tensor:
    """-log sigma(r_c - r_r - m), with P(label is wrong) = label_smoothing (0.5 for a tie).

    chosen, rejected, margin, weights: (B,); label_smoothing: float or (B,).
    """
    logits = chosen - rejected  # (B,)
    if margin is not None:
        logits = logits - margin
    eps = label_smoothing
    losses = -(1 - eps) * F.logsigmoid(logits) - eps * F.logsigmoid(-logits)  # (B,)
    return _weighted_mean(losses, weights)


def margin_ranking_loss(
    positive: Tensor, negative: Tensor, *, margin: float = 0.2, weights: Tensor | None = None
) -> Tensor:
    """max(0, m - s+ + s-) on similarity scores. positive, negative: (B,)."""
    return _weighted_mean(torch.clamp(margin - positive + negative, min=0), weights)


def info_nce_loss(queries: Tensor, keys: Tensor, *, temperature: float = 0.05) -> Tensor:
    """-log exp(q_i.k_i/tau) / sum_j exp(q_i.k_j/tau), with every other key an in-batch negative.

    queries: (B, D); keys: (N, D) with N >= B, where keys[i] is the positive of queries[i] and
    keys[B:] are extra negatives shared by all queries (e.g. the rejected replies).
    """
    logits = queries @ keys.T / temperature  # (B, N)
    targets = torch.arange(queries.shape[0], device=queries.device)  # (B,)
    return F.cross_entropy(logits, targets)


def contrastive_lm_loss(logps: Tensor, *, weights: Tensor | None = None) -> Tensor:
    """Listwise: -log exp(l(x+)) / sum_j exp(l(x_j)) over sequence log-likelihoods.

    logps: (B, 1 + K), the positive in column 0 and K negatives after it.
    """
    return _weighted_mean(-torch.log_softmax(logps, dim=-1)[:, 0], weights)


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float | Tensor = 0.0,
    weights: Tensor | None = None,
) -> Tensor:
    """DPO (sigmoid): -log sigma(beta * ((pi_c - ref_c) - (pi_r - ref_r))). All inputs: (B,) log-probs."""
    logits = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # (B,)
    eps = label_smoothing
    losses = -(1 - eps) * F.logsigmoid(beta * logits) - eps * F.logsigmoid(-beta * logits)
    return _weighted_mean(losses, weights)


def ipo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float | Tensor = 0.0,
    weights: Tensor | None = None,
) -> Tensor:
    """IPO: (h - (1 - 2 eps) / (2 beta))^2, h the log-ratio difference; inputs (B,), usually per-token means.

    With label smoothing eps the target gap shrinks towards 0; a tie (eps = 0.5) is pulled to h = 0.
    """
    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)  # (B,)
    target = (1 - 2 * label_smoothing) / (2 * beta)  # float or (B,)
    return _weighted_mean((h - target) ** 2, weights)
