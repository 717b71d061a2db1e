"""Arena ratings, checked against an independent re-derivation of FastChat's compute_mle_elo."""

import math

import numpy as np
import pytest

from training.leaderboard import Battle, _cells, _fit, bradley_terry, leaderboard

TRUE_RATINGS = {"base": 1000.0, "sft": 1080.0, "dpo": 1150.0, "imported": 900.0}


def simulated_battles(n: int = 1500, seed: int = 3) -> list[Battle]:
    """Battles between random pairs; 15% of them ties, the rest drawn from the Elo win probability."""
    rng = np.random.default_rng(seed)
    names = list(TRUE_RATINGS)
    battles = []
    for _ in range(n):
        a, b = rng.choice(len(names), size=2, replace=False)
        p_a = 1 / (1 + 10 ** ((TRUE_RATINGS[names[b]] - TRUE_RATINGS[names[a]]) / 400))
        draw = rng.random()
        winner = "tie" if draw < 0.15 else ("a" if rng.random() < p_a else "b")
        battles.append(Battle(names[a], names[b], winner))
    return battles


def fastchat_compute_mle_elo(battles: list[Battle], scale=400, base=10, init_rating=1000) -> dict[str, float]:
    """FastChat's compute_mle_elo, re-derived without pandas/sklearn: win counts per ordered pair
    (a win counts 2, a tie 1 each way), two weighted logistic-regression rows per ordered pair,
    no intercept, no penalty; fitted here by plain gradient descent."""
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    index = {m: i for i, m in enumerate(models)}
    n = len(models)
    win = np.zeros((n, n))
    for battle in battles:
        a, b = index[battle.model_a], index[battle.model_b]
        if battle.winner == "a":
            win[a, b] += 2
        elif battle.winner == "b":
            win[b, a] += 2
        else:
            win[a, b] += 1
            win[b, a] += 1
    rows, ys, weights = [], [], []
    for a in range(n):
        for b in range(n):
            if a == b or win[a, b] + win[b, a] == 0:
                continue
            x = np.zeros(n)
            x[a], x[b] = math.log(base), -math.log(base)
            rows += [x, x]
            ys += [1.0, 0.0]
            weights += [win[a, b], win[b, a]]
    X, y, w = np.array(rows), np.array(ys), np.array(weights)
    w = w / w.sum()
    coef = np.zeros(n)
    for _ in range(50000):
        p = 1 / (1 + np.exp(-(X @ coef)))
        coef -= 2.0 * (X.T @ (w * (p - y)))
    return dict(zip(models, scale * coef + init_rating, strict=True))


def test_ratings_match_fastchats_compute_mle_elo():
    battles = simulated_battles()
    reference = fastchat_compute_mle_elo(battles)
    ours = bradley_terry(battles, l2=0.0)
    for model, rating in reference.items():
        assert ours[model] == pytest.approx(rating, abs=0.5)
    # and the ratings recover the order (and roughly the gaps) the battles were drawn from
    assert sorted(ours, key=ours.get) == ["imported", "base", "sft", "dpo"]
    assert ours["dpo"] - ours["base"] == pytest.approx(150, abs=50)


def test_the_default_regularisation_barely_moves_the_ratings():
    battles = simulated_battles()
    plain, default = bradley_terry(battles, l2=0.0), bradley_terry(battles)
    assert all(abs(plain[m] - default[m]) < 1.0 for m in plain)


def test_a_model_that_won_every_battle_still_gets_a_finite_rating():
    ratings = bradley_terry([Battle("tuned", "base", "a")] * 20)
    assert math.isfinite(ratings["tuned"]) and ratings["tuned"] > ratings["base"]


def test_a_tie_counts_half_a_win_each_way():
    ratings = bradley_terry([Battle("x", "y", "a"), Battle("x", "y", "b"), Battle("x", "y", "tie")], l2=0.0)
    assert ratings["x"] == pytest.approx(ratings["y"]) == pytest.approx(1000.0)


def test_the_board_has_bootstrap_intervals_a_win_rate_matrix_and_votes_per_pair():
    battles = simulated_battles(n=400)
    board = leaderboard(battles, rounds=100, seed=0)
    assert board.models[0] == "dpo" and board.models[-1] == "imported"
    for row in board.rows:
        assert row["ci_low"] < row["rating"] < row["ci_high"]
        assert row["wins"] + row["losses"] + row["ties"] == row["battles"]
    i, j = board.models.index("dpo"), board.models.index("base")
    pair = [b for b in battles if {b.model_a, b.model_b} == {"dpo", "base"}]
    assert board.votes[i][j] == board.votes[j][i] == len(pair)
    dpo_score = sum(
        0.5 if b.winner == "tie" else float((b.winner == "a") == (b.model_a == "dpo")) for b in pair
    )
    assert board.win_rate[i][j] == pytest.approx(dpo_score / len(pair), abs=1e-4)
    assert board.win_rate[i][j] + board.win_rate[j][i] == pytest.approx(1.0)
    assert board.win_rate[i][i] is None


def test_it_refuses_bad_battles():
    with pytest.raises(ValueError, match="Unknown outcome"):
        bradley_terry([Battle("x", "y", "left")])
    with pytest.raises(ValueError, match="itself"):
        bradley_terry([Battle("x", "x", "a")])


def test_no_battles_give_an_empty_board():
    assert leaderboard([]).rows == []


def test_the_cell_fit_gives_the_ratings_of_a_fit_on_every_battle():
    battles = simulated_battles(n=300)
    models = sorted(TRUE_RATINGS)
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[b.model_a] for b in battles])
    b = np.array([index[b.model_b] for b in battles])
    score = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[x.winner] for x in battles])
    per_battle = _fit(a, b, score, np.ones(len(battles)), len(models), 1e-4)
    cells = bradley_terry(battles)
    assert len(_cells(battles, models)[0]) <= 36 < len(battles)
    for model, rating in zip(models, per_battle, strict=True):
        assert cells[model] == pytest.approx(rating, abs=1e-3)


def test_a_counted_battle_row_gives_the_board_of_that_many_single_battles():
    single = simulated_battles(400)
    counted = {}
    for battle in single:
        counted[battle] = counted.get(battle, 0) + 1
    rows = [Battle(b.model_a, b.model_b, b.winner, count=n) for b, n in counted.items()]
    assert len(rows) < len(single)
    assert leaderboard(rows, rounds=30, seed=5).to_dict() == leaderboard(single, rounds=30, seed=5).to_dict()
    with pytest.raises(ValueError, match="at least one battle"):
        leaderboard([Battle("x", "y", "a", count=0)])
