"""Choose the active-learning bench's features and L2 strength WITHOUT looking at uncertainty sampling:
each candidate is scored only by what random queue order reaches with the full label budget, on
selection splits (seeds 100-104 by default) disjoint from the splits the bench reports (0-9).

    .venv/bin/python bench/active_learning_select.py --features lm-mean,lm-mean+lm-last \\
        --layers 12,18,24 --l2 300,1000,3000

For each (features, layer, l2) and seed: the split, the A/B sides and the seed batch are drawn
exactly as ``active_learning.simulate`` draws them; the rest of the budget is one random draw from
the pool (random order's labels, all at once); the head is fitted once. Prints one JSON object with
the mean/std held-out accuracy and mean held-out log-loss of every candidate. Feature caches are
the bench's own (``--cache-dir``), so the first lm-* candidate pays for computing them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.special import log_expit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.active_learning import feature_kind, fit, pair_features  # noqa: E402
from bench.common import DEFAULT_DATA, emit, load_pairs, skip  # noqa: E402


def random_order_final(x, y, *, seed: int, budget: int, batch: int, test_fraction: float, l2: float):
    """(held-out accuracy, held-out log-loss) after ``budget`` labels in random order."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, pool = idx[:n_test], idx[n_test:]
    labelled = rng.choice(pool, size=batch, replace=False)  # the seed batch, as simulate() draws it
    rest = np.random.default_rng(seed + 1).permutation(np.setdiff1d(pool, labelled))
    labelled = np.concatenate([labelled, rest[: budget - batch]])
    w = fit(x[labelled], y[labelled], l2)
    z, t = x[test] @ w, y[test]
    return float(((z > 0) == (t == 1)).mean()), float(-(t * log_expit(z) + (1 - t) * log_expit(-z)).mean())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--features", default="lm-mean", help="Comma-separated feature kinds.")
    parser.add_argument("--layers", default="18", help="Comma-separated LM layers (lm-last/lm-mean only).")
    parser.add_argument("--l2", default="1000", help="Comma-separated L2 strengths.")
    parser.add_argument("--seeds", default="100,101,102,103,104")
    parser.add_argument("--budget", type=int, default=800)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--cache-dir", type=Path, default=REPO / "var" / "bench")
    parser.add_argument("--lm", default="smollm2-135m")
    parser.add_argument("--lm-max-length", type=int, default=256)
    args = parser.parse_args(argv)
    if not args.data.exists():
        skip(f"{args.data} is not here; this bench needs the HH-RLHF dev file.")
    kinds = [feature_kind(k) for k in args.features.split(",")]
    layers = [int(v) for v in args.layers.split(",")]
    strengths = [float(v) for v in args.l2.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]

    examples, _ = load_pairs(args.data)
    rows = []
    for kind in kinds:
        uses_layer = "lm-last" in kind or "lm-mean" in kind
        for layer in layers if uses_layer else layers[:1]:
            chosen, rejected, _ = pair_features(
                examples,
                args.data,
                kind,
                cache_dir=args.cache_dir,
                lm=args.lm,
                lm_layer=layer,
                lm_max_length=args.lm_max_length,
            )
            for l2 in strengths:
                scores = []
                for seed in seeds:
                    flip = np.random.default_rng(seed).random(len(examples)) < 0.5  # as the bench does
                    a = np.where(flip[:, None], rejected, chosen)
                    b = np.where(flip[:, None], chosen, rejected)
                    scores.append(
                        random_order_final(
                            a - b,
                            (~flip).astype(float),
                            seed=seed,
                            budget=args.budget,
                            batch=args.batch,
                            test_fraction=args.test_fraction,
                            l2=l2,
                        )
                    )
                accuracy = [s[0] for s in scores]
                rows.append(
                    {
                        "features": kind,
                        "lm_layer": layer if uses_layer else None,
                        "l2": l2,
                        "random_final_accuracy": round(float(np.mean(accuracy)), 3),
                        "std": round(float(np.std(accuracy)), 3),
                        "log_loss": round(float(np.mean([s[1] for s in scores])), 3),
                    }
                )
    best = max(rows, key=lambda r: r["random_final_accuracy"])
    result = {
        "bench": "active_learning_select",
        "seeds": seeds,
        "budget": args.budget,
        "rows": rows,
        "best": best,
    }
    emit(result)
    return result


if __name__ == "__main__":
    main()
