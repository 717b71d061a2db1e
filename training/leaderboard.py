"""Arena leaderboard: Bradley-Terry ratings of model versions from human votes.

Method (the one FastChat's ``compute_mle_elo`` uses, written with numpy/scipy): a logistic
regression on battles where P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / 400)); a tie counts as half
a win for each side; ratings are centred on 1000. A tiny L2 term (``l2``) keeps the ratings finite
when a model won or lost every battle; ``l2=0`` is the plain MLE. 95% intervals come from
bootstrap resampling of battles. "Both bad" votes count as ties, as in Chatbot Arena.

The fit runs on the unique (model a, model b, outcome) cells weighted by their counts, not on one
row per battle: a project's battles fall into a few cells per pair, so a fit costs the same at 100k
battles as at 1k. A bootstrap round redraws the battles as multinomial counts over those cells,
which is the same distribution as resampling battles with replacement.

>>> board = leaderboard([Battle("tuned", "base", "a"), Battle("tuned", "base", "tie")], rounds=0)
>>> board.rows[0]["model"]
'tuned'
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
OUTCOMES = ("a", "b", "tie")

# L-BFGS-B's BLAS calls on a handful of ratings gain nothing from threads, and on a loaded host
# waking OpenBLAS's pool for each of them made a 0.3 s board take 6 s. Both entry points run on one.
one_blas_thread = threadpool_limits.wrap(limits=1, user_api="blas")


@dataclass(frozen=True)
class Battle:
    model_a: str
    model_b: str
    winner: str  # "a", "b" or "tie"
    count: int = 1
    """How many identical battles this row stands for (a database can hand over its counts)."""


@dataclass
class Leaderboard:
    rows: list[dict] = field(default_factory=list)
    """Best first: model, rating, ci_low, ci_high, battles, wins, losses, ties."""
    models: list[str] = field(default_factory=list)
    win_rate: list[list[float | None]] = field(default_factory=list)
    """win_rate[i][j]: share of i-vs-j battles won by models[i] (ties count half); None if none."""
    votes: list[list[int]] = field(default_factory=list)
    """votes[i][j]: battles between models[i] and models[j]."""

    def to_dict(self) -> dict:
        return {"rows": self.rows, "models": self.models, "win_rate": self.win_rate, "votes": self.votes}


def _cells(battles: list[Battle], models: list[str]) -> tuple[np.ndarray, ...]:
    """The unique (a, b, score) cells and how many battles fell in each."""
    index = {m: i for i, m in enumerate(models)}
    code = {"a": 2, "b": 0, "tie": 1}
    keys = np.array(
        [(index[x.model_a] * len(models) + index[x.model_b]) * 3 + code[x.winner] for x in battles],
        dtype=np.int64,
    )
    unique, where = np.unique(keys, return_inverse=True)
    counts = np.bincount(where, weights=[x.count for x in battles], minlength=len(unique))
    pair, outcome = np.divmod(unique, 3)
    a, b = np.divmod(pair, len(models))
    return a, b, outcome / 2.0, counts  # (cells,) each


def _fit(
    a: np.ndarray, b: np.ndarray, score: np.ndarray, weight: np.ndarray, n_models: int, l2: float
) -> np.ndarray:
    """Ratings on the Elo scale maximising the tie-as-half-win Bradley-Terry likelihood of
    ``weight`` battles in each (a, b, score) cell."""
    k = np.log(BASE) / SCALE

    def loss_and_grad(r: np.ndarray) -> tuple[float, np.ndarray]:
        z = k * (r[a] - r[b])  # (cells,) log-odds that a wins
        nll = -(weight * (score * log_expit(z) + (1 - score) * log_expit(-z))).sum()
        loss = nll + 0.5 * l2 * (k * r) @ (k * r)
        dz = weight * (expit(z) - score)  # d loss / d z
        grad = np.bincount(a, k * dz, n_models) - np.bincount(b, k * dz, n_models)
        return float(loss), grad + l2 * k * k * r

    result = minimize(loss_and_grad, np.zeros(n_models), jac=True, method="L-BFGS-B", options={"gtol": 1e-9})
    ratings = result.x
    return ratings - ratings.mean() + INIT_RATING


@one_blas_thread
def bradley_terry(battles: list[Battle], *, l2: float = 1e-4) -> dict[str, float]:
    """Elo-scale Bradley-Terry ratings, mean 1000."""
    _validate(battles)
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    if not models:
        return {}
    a, b, score, weight = _cells(battles, models)
    return dict(zip(models, _fit(a, b, score, weight, len(models), l2).tolist(), strict=True))


def _validate(battles: list[Battle]) -> None:
    for battle in battles:
        if battle.winner not in OUTCOMES:
            raise ValueError(f"Unknown outcome {battle.winner!r}; use 'a', 'b' or 'tie'.")
        if battle.model_a == battle.model_b:
            raise ValueError(f"A model cannot battle itself ({battle.model_a!r}).")
        if battle.count < 1:
            raise ValueError(f"A battle row stands for at least one battle, not {battle.count}.")


@one_blas_thread
def leaderboard(battles: list[Battle], *, rounds: int = 200, seed: int = 0, l2: float = 1e-4) -> Leaderboard:
    """Ratings with bootstrap 95% intervals (``rounds`` resamples of the battles), the win-rate
    matrix and votes per pair."""
    _validate(battles)
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    if not models:
        return Leaderboard()
    n = len(models)
    a, b, score, weight = _cells(battles, models)
    ratings = _fit(a, b, score, weight, n, l2)
    if rounds > 0:
        rng = np.random.default_rng(seed)
        samples = np.empty((rounds, n))
        share = weight / weight.sum()
        for r in range(rounds):
            drawn = rng.multinomial(int(weight.sum()), share).astype(np.float64)
            samples[r] = _fit(a, b, score, drawn, n, l2)
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    else:
        low = high = ratings

    wins = np.zeros((n, n))
    votes = np.zeros((n, n), dtype=np.int64)
    np.add.at(wins, (a, b), weight * score)
    np.add.at(wins, (b, a), weight * (1 - score))
    np.add.at(votes, (a, b), weight.astype(np.int64))
    np.add.at(votes, (b, a), weight.astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = wins / votes
    rows = []
    for i, model in enumerate(models):
        mine_a, mine_b = a == i, b == i
        won = int(weight[((score == 1) & mine_a) | ((score == 0) & mine_b)].sum())
        tied = int(weight[(score == 0.5) & (mine_a | mine_b)].sum())
        total = int(weight[mine_a | mine_b].sum())
        rows.append(
            {
                "model": model,
                "rating": round(float(ratings[i]), 2),
                "ci_low": round(float(low[i]), 2),
                "ci_high": round(float(high[i]), 2),
                "battles": total,
                "wins": won,
                "losses": total - won - tied,
                "ties": tied,
            }
        )
    order = sorted(range(n), key=lambda i: -ratings[i])
    return Leaderboard(
        rows=[rows[i] for i in order],
        models=[models[i] for i in order],
        win_rate=[[None if votes[i, j] == 0 else round(float(rate[i, j]), 4) for j in order] for i in order],
        votes=[[int(votes[i, j]) for j in order] for i in order],
    )
