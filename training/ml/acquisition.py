"""Which pending comparison to ask about next: acquisition scores for the active-learning queue.

A reward model's head is linear, so for a pair shown as (A, B) the Bradley-Terry model says
``P(A > B) = sigmoid(w . d)`` with ``d = f_A - f_B``, the difference of the pooled vectors the head
sees (its bias cancels). Two scores use that:

- ``margin_priority``: ``1 - 2|P - 0.5|``, "most uncertain first" under the point estimate w.
- ``bald``: the mutual information between the next label and w (Houlsby et al. 2011, "Bayesian
  Active Learning for Classification and Preference Learning"), under a last-layer Laplace
  posterior ``w ~ N(w_hat, H^-1)`` fitted around the trained head weight ``w_hat``:

      H = lam I + sum_i p_i (1 - p_i) d_i d_i',   p_i = sigmoid(w_hat . d_i)

  over the labelled pairs d_i: the Hessian of the negative log-posterior of the head under a
  ``N(0, I / lam)`` prior. A pending pair's logit is then ``N(m, v)``, ``m = w_hat . d``,
  ``v = d' H^-1 d``. BALD is high where the label is uncertain *and* the head's weights disagree
  about it (v large), not where the pair is merely a coin flip that more labels would not settle.

Prior precision ``lam``: when none is given, the one of a log grid with the highest Laplace
evidence (log marginal likelihood) around the fixed mode w_hat,

    log p(y | lam) ~ sum_i log p(y_i | w_hat) - lam/2 |w_hat|^2 + (D/2) log lam - 1/2 log det H(lam)

(D = len(w_hat); the first term does not depend on lam). The head is not refitted per lam: w_hat
is the trained network's head, as in last-layer Laplace for deep nets. With no labelled pairs
the evidence says nothing, and lam = D / |w_hat|^2 (the precision under which w_hat is typical).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> w = rng.normal(size=4); diffs = rng.normal(size=(50, 4)); labels = (diffs @ w > 0) * 1.0
>>> posterior = laplace_fit(diffs, labels, w)
>>> mean, var = posterior.predict(rng.normal(size=(3, 4)))  # (3,), (3,)
>>> scores = bald(mean, var)  # bits, in [0, 1]; the highest first

float64 numpy throughout (no torch, no scipy), so the web process may import this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Prior precisions tried by the evidence: wide, because pooled vectors of different backbones
# differ in scale by orders of magnitude.
DEFAULT_PRIOR_GRID = tuple(float(x) for x in np.logspace(-4, 6, 41))

# Probit approximation sigma(z) ~ Phi(KAPPA z), and h(Phi(x)) ~ exp(-x^2 / (2 C)) for the binary
# entropy in bits (Houlsby et al. 2011, eq. 4-5).
KAPPA = math.sqrt(math.pi / 8)
ENTROPY_C = math.pi * math.log(2) / 2


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # no overflow for large |z|


def margin_priority(mean: np.ndarray) -> np.ndarray:
    """``1 - 2|P - 0.5|`` with P = sigmoid(mean): 1 for a coin flip, 0 for a sure call."""
    return 1.0 - 2.0 * np.abs(sigmoid(mean) - 0.5)


def bald(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Mutual information (bits, in [0, 1]) between a pair's label and the head's weights, for a
    logit ``N(mean, var)``: ``h(E[P]) - E[h(P)]``, P = sigmoid(logit), h = binary entropy.

    Closed form through the probit approximation, with the entropy approximation of Houlsby et al.
    applied to both terms, so that it is exactly 0 when ``var`` is 0 (nothing to learn about the
    weights from this label) and the two terms' approximation errors largely cancel:

        m = KAPPA mean, s2 = KAPPA^2 var
        h(E[P])  ~ exp(-m^2 / (2 C (1 + s2)))
        E[h(P)]  ~ sqrt(C / (C + s2)) exp(-m^2 / (2 (C + s2)))
    """
    mean = np.asarray(mean, dtype=np.float64)
    s2 = KAPPA**2 * np.maximum(np.asarray(var, dtype=np.float64), 0.0)
    m2 = KAPPA**2 * mean**2
    predictive = np.exp(-m2 / (2 * ENTROPY_C * (1 + s2)))
    expected = np.sqrt(ENTROPY_C / (ENTROPY_C + s2)) * np.exp(-m2 / (2 * (ENTROPY_C + s2)))
    return np.clip(predictive - expected, 0.0, 1.0)


@dataclass(frozen=True)
class LaplacePosterior:
    """``w ~ N(weight, H^-1)`` with ``H = cholesky @ cholesky.T``."""

    weight: np.ndarray  # (D,)
    prior_precision: float
    cholesky: np.ndarray  # (D, D), lower triangular
    log_evidence: float | None = None  # at prior_precision, when chosen by the evidence

    def predict(self, diffs: np.ndarray, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the logit ``w . d`` for each row of ``diffs`` (N, D): (N,), (N,)."""
        diffs = np.asarray(diffs, dtype=np.float64).reshape(-1, len(self.weight))
        mean = diffs @ self.weight
        var = np.empty(len(diffs))
        for start in range(0, len(diffs), chunk):
            a = np.linalg.solve(self.cholesky, diffs[start : start + chunk].T)  # L^-1 d', (D, n)
            var[start : start + chunk] = (a * a).sum(0)  # d' H^-1 d = |L^-1 d|^2 >= 0
        return mean, var


def log_evidence(diffs: np.ndarray, labels: np.ndarray, weight: np.ndarray, prior_precisions) -> np.ndarray:
    """Laplace log evidence around the fixed mode ``weight`` for each prior precision (see the
    module docstring). One eigendecomposition of the data term serves the whole grid."""
    diffs, labels, weight = _as_arrays(diffs, labels, weight)
    z = diffs @ weight
    loglik = float(-(np.logaddexp(0, -z) * labels + np.logaddexp(0, z) * (1 - labels)).sum())
    eig = np.clip(np.linalg.eigvalsh(_data_hessian(diffs, weight)), 0.0, None)  # (D,)
    lam = np.asarray(prior_precisions, dtype=np.float64)
    dim = len(weight)
    logdet = np.log(lam[:, None] + eig[None, :]).sum(1)
    return loglik - 0.5 * lam * float(weight @ weight) + 0.5 * dim * np.log(lam) - 0.5 * logdet


def laplace_fit(
    diffs: np.ndarray,
    labels: np.ndarray,
    weight: np.ndarray,
    *,
    prior_precision: float | None = None,
    grid=DEFAULT_PRIOR_GRID,
) -> LaplacePosterior:
    """Last-layer Laplace posterior of a Bradley-Terry head with weight ``weight`` (D,), from
    labelled pair differences ``diffs`` (N, D) and ``labels`` (N,), 1 where the first side won.
    ``prior_precision`` None: the grid's value with the highest evidence.

    Around a fixed mode the labels enter only the evidence's log-likelihood term, which is the same
    for every prior precision: which pairs were labelled shapes the posterior, not how they were
    answered (the answers shaped ``weight``, in training). ``labels`` only sets ``log_evidence``."""
    diffs, labels, weight = _as_arrays(diffs, labels, weight)
    evidence = None
    if prior_precision is None:
        if len(diffs) == 0:
            prior_precision = len(weight) / max(float(weight @ weight), 1e-12)
        else:
            scores = log_evidence(diffs, labels, weight, grid)
            best = int(np.argmax(scores))
            prior_precision, evidence = float(grid[best]), float(scores[best])
    if prior_precision <= 0:
        raise ValueError("prior_precision must be positive.")
    hessian = _data_hessian(diffs, weight) + prior_precision * np.eye(len(weight))
    return LaplacePosterior(
        weight=weight,
        prior_precision=float(prior_precision),
        cholesky=np.linalg.cholesky(hessian),
        log_evidence=evidence,
    )


def _data_hessian(diffs: np.ndarray, weight: np.ndarray) -> np.ndarray:
    p = sigmoid(diffs @ weight)
    return (diffs * (p * (1 - p))[:, None]).T @ diffs  # (D, D)


def _as_arrays(diffs, labels, weight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weight = np.asarray(weight, dtype=np.float64).reshape(-1)
    diffs = np.asarray(diffs, dtype=np.float64).reshape(-1, len(weight))
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(labels) != len(diffs):
        raise ValueError(f"{len(diffs)} pair differences but {len(labels)} labels.")
    return diffs, labels, weight
