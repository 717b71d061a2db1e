"""Tuned against base on the same prompts: win rate, its bootstrap interval, and the KL drift.

Pure numpy, no Django: the app's evaluation reads scores and log-probs from wherever it keeps them
and passes plain sequences here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def outcomes(tuned_scores: Sequence[float], base_scores: Sequence[float]) -> np.ndarray:
    """Per prompt: 1 where the tuned reply scored higher, 0 where lower, 0.5 for a tie."""
    tuned, base = np.asarray(tuned_scores, dtype=float), np.asarray(base_scores, dtype=float)
    if tuned.shape != base.shape or tuned.ndim != 1:
        raise ValueError("tuned and base scores must be two flat sequences of the same length")
    return (np.sign(tuned - base) + 1) / 2


def win_rate(tuned_scores: Sequence[float], base_scores: Sequence[float]) -> float:
    """Share of prompts the tuned reply wins, ties counting half."""
    wins = outcomes(tuned_scores, base_scores)
    if wins.size == 0:
        raise ValueError("no scores to compare")
    return float(wins.mean())


def bootstrap_interval(
    wins: Sequence[float], *, rounds: int = 1000, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of ``wins`` (per-prompt outcomes), resampling prompts."""
    values = np.asarray(wins, dtype=float)
    if values.size == 0:
        raise ValueError("no outcomes to resample")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(rounds, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def mean_kl(tuned_logps: Sequence[Sequence[float]], base_logps: Sequence[Sequence[float]]) -> float:
    """KL(tuned || base) per token, estimated on tokens sampled from the tuned policy: the mean of
    log p_tuned - log p_base over every sampled token (sequences may differ in length)."""
    if len(tuned_logps) != len(base_logps):
        raise ValueError("tuned and base log-probs must cover the same samples")
    diffs = []
    for tuned, base in zip(tuned_logps, base_logps, strict=True):
        tuned, base = np.asarray(tuned, dtype=float), np.asarray(base, dtype=float)
        if tuned.shape != base.shape:
            raise ValueError("each sample needs one base log-prob per tuned log-prob")
        diffs.append(tuned - base)
    tokens = np.concatenate(diffs) if diffs else np.empty(0)
    if tokens.size == 0:
        raise ValueError("no sampled tokens")
    return float(tokens.mean())
