"""Acquisition scores for the active-learning queue: Laplace variance and BALD against Monte Carlo
on a small synthetic logistic problem, and the evidence's choice of prior precision."""

import numpy as np
import pytest

from training.ml.acquisition import bald, laplace_fit, log_evidence, margin_priority, sigmoid


def binary_entropy_bits(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def logistic_problem(*, n=400, dim=6, prior_precision=4.0, seed=0):
    """Pair differences, Bradley-Terry labels drawn from a weight of the given prior, the weight."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(scale=1 / np.sqrt(prior_precision), size=dim)
    diffs = rng.normal(size=(n, dim))
    labels = (rng.random(n) < sigmoid(diffs @ weight)).astype(float)
    return diffs, labels, weight


def map_weight(diffs, labels, prior_precision, steps=50):
    """Newton's method on the L2-regularised logistic loss (the head a trainer would hand over)."""
    w = np.zeros(diffs.shape[1])
    for _ in range(steps):
        p = sigmoid(diffs @ w)
        grad = diffs.T @ (p - labels) + prior_precision * w
        hess = (diffs * (p * (1 - p))[:, None]).T @ diffs + prior_precision * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def test_the_predictive_variance_is_d_h_inverse_d_and_matches_posterior_samples():
    diffs, labels, _ = logistic_problem(n=60)
    w = map_weight(diffs, labels, 2.0)
    posterior = laplace_fit(diffs, labels, w, prior_precision=2.0)
    pending = np.random.default_rng(1).normal(size=(20, diffs.shape[1]))
    mean, var = posterior.predict(pending, chunk=7)  # chunking must not change the answer

    p = sigmoid(diffs @ w)
    hessian = 2.0 * np.eye(len(w)) + (diffs * (p * (1 - p))[:, None]).T @ diffs
    exact = np.einsum("ij,jk,ik->i", pending, np.linalg.inv(hessian), pending)
    assert var == pytest.approx(exact, rel=1e-9)
    assert mean == pytest.approx(pending @ w)

    samples = np.random.default_rng(2).multivariate_normal(w, np.linalg.inv(hessian), size=40_000)
    logits = pending @ samples.T  # (20, samples)
    assert var == pytest.approx(logits.var(1), rel=0.05)


def test_bald_matches_monte_carlo_mutual_information():
    rng = np.random.default_rng(0)
    mean, var = rng.normal(scale=2.5, size=200), rng.exponential(2.0, size=200)
    logits = mean[:, None] + np.sqrt(var)[:, None] * rng.standard_normal((200, 20_000))
    p = sigmoid(logits)
    monte_carlo = binary_entropy_bits(p.mean(1)) - binary_entropy_bits(p).mean(1)

    scores = bald(mean, var)
    assert np.abs(scores - monte_carlo).max() < 0.05
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(ranks(scores), ranks(monte_carlo))[0, 1] > 0.99


def test_bald_is_zero_without_weight_uncertainty_and_stays_within_one_bit():
    mean = np.linspace(-30, 30, 61)
    assert bald(mean, np.zeros_like(mean)) == pytest.approx(np.zeros_like(mean), abs=1e-15)
    grid_mean, grid_var = np.meshgrid(np.linspace(-30, 30, 121), np.logspace(-8, 6, 57))
    scores = bald(grid_mean, grid_var)
    assert scores.min() >= 0 and scores.max() <= 1
    # More weight uncertainty about a coin-flip pair: more to learn from its label.
    assert np.all(np.diff(bald(np.zeros(5), np.array([0.1, 1, 10, 100, 1000]))) > 0)


def test_margin_priority_is_one_at_a_coin_flip_and_falls_to_zero():
    assert margin_priority(np.array([0.0, 50.0, -50.0, np.log(3)])) == pytest.approx([1, 0, 0, 0.5])


def test_the_evidence_picks_a_prior_precision_near_the_true_one():
    true_precision = 4.0
    picked = []
    for seed in range(5):
        diffs, labels, _ = logistic_problem(n=3000, dim=20, prior_precision=true_precision, seed=seed)
        w = map_weight(diffs, labels, 1.0)
        picked.append(laplace_fit(diffs, labels, w).prior_precision)
    # A 20-dimensional weight pins its own scale down to within a factor of about two.
    assert true_precision / 3 <= np.exp(np.mean(np.log(picked))) <= true_precision * 3


def test_the_evidence_is_the_laplace_formula_and_peaks_where_the_fit_is_chosen():
    diffs, labels, w = logistic_problem(n=100, dim=3)
    lam = 0.7
    p = sigmoid(diffs @ w)
    hessian = lam * np.eye(3) + (diffs * (p * (1 - p))[:, None]).T @ diffs
    loglik = np.sum(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    expected = loglik - lam / 2 * w @ w + 1.5 * np.log(lam) - 0.5 * np.linalg.slogdet(hessian)[1]
    assert log_evidence(diffs, labels, w, [lam])[0] == pytest.approx(expected)

    grid = np.logspace(-3, 3, 25)
    posterior = laplace_fit(diffs, labels, w, grid=grid)
    assert posterior.prior_precision == grid[np.argmax(log_evidence(diffs, labels, w, grid))]


def test_without_labels_the_prior_is_the_precision_that_makes_the_weight_typical():
    w = np.array([3.0, 4.0])
    posterior = laplace_fit(np.zeros((0, 2)), np.zeros(0), w)
    assert posterior.prior_precision == pytest.approx(2 / 25)
    _, var = posterior.predict(np.eye(2))
    assert var == pytest.approx([25 / 2, 25 / 2])


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="labels"):
        laplace_fit(np.zeros((3, 2)), np.zeros(2), np.ones(2))
