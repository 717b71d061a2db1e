import numpy as np
import pytest

from training.ml.evaluation import bootstrap_interval, mean_kl, outcomes, win_rate


def test_win_rate_counts_ties_half():
    assert win_rate([3.0, 1.0, 2.0, 5.0], [1.0, 2.0, 2.0, 4.0]) == pytest.approx(0.625)
    assert outcomes([1.0, 0.0, 2.0], [0.0, 1.0, 2.0]).tolist() == [1.0, 0.0, 0.5]


def test_win_rate_refuses_mismatched_or_empty_scores():
    with pytest.raises(ValueError):
        win_rate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        win_rate([], [])


def test_bootstrap_interval_is_seeded_brackets_the_mean_and_collapses_on_constant_outcomes():
    wins = [1, 1, 1, 0, 0.5, 1, 0, 1, 1, 0]
    low, high = bootstrap_interval(wins, rounds=2000, seed=7)
    assert (low, high) == bootstrap_interval(wins, rounds=2000, seed=7)
    assert bootstrap_interval(wins, rounds=2000, seed=8) != (low, high)
    assert low < 0.65 < high and low > 0.2 and high < 1.0
    assert bootstrap_interval([1, 1, 1], seed=0) == (1.0, 1.0)


def test_mean_kl_is_the_per_token_mean_of_the_log_ratio():
    tuned = [[-0.5, -1.0], [-2.0]]
    base = [[-1.0, -1.5], [-1.0]]
    # differences 0.5, 0.5, -1.0 over three tokens
    assert mean_kl(tuned, base) == pytest.approx(0.0)
    assert mean_kl([[-0.1, -0.2, -0.3]], [[-0.4, -0.4, -0.6]]) == pytest.approx(0.8 / 3)
    with pytest.raises(ValueError):
        mean_kl([[-0.1, -0.2]], [[-0.1]])
    with pytest.raises(ValueError):
        mean_kl([], [])
    assert mean_kl([np.array([-1.0])], [np.array([-2.0])]) == 1.0
