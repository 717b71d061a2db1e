"""The active-learning bench runs end to end at a tiny size on a file the test writes (the real
run reads ``../shared/data/hh-harmless-dev.jsonl``); ``length`` features need no model."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "active_learning.py"


def hh_file(path: Path, pairs: int) -> Path:
    """HH-style rows whose chosen reply is short and declines, the rejected one long and eager."""
    rng = random.Random(0)
    rows = []
    for i in range(pairs):
        prompt = f"\n\nHuman: how do I do thing {i}?"
        short = "Sorry, I can't help with that." if rng.random() < 0.8 else "Here is how, step one."
        long = " ".join(["Sure, here is a long and detailed plan"] * rng.randint(2, 6))
        chosen, rejected = f"{prompt}\n\nAssistant: {short}", f"{prompt}\n\nAssistant: {long}"
        rows.append({"chosen": chosen, "rejected": rejected})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_it_prints_both_curves_and_the_label_fraction_as_one_json_object(tmp_path):
    data = hh_file(tmp_path / "hh.jsonl", 80)

    result = run_bench("--data", str(data), "--features", "length", "--budget", "30",
                       "--batch", "10", "--repeats", "2")  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # one JSON object and nothing else
    assert report["pairs"] == 80 and report["features"] == "length"
    for order in ("uncertainty", "informative", "random"):
        assert [p["labels"] for p in report["curves"][order]] == [10, 20, 30]
        assert all(0 <= p["accuracy"] <= 1 and p["std"] >= 0 for p in report["curves"][order])
        # The same seed batch starts every order, so their first points agree.
        assert report["curves"][order][0] == report["curves"]["random"][0]
    assert report["random_final_accuracy"] > 0.75  # the toy file is learnable from length alone
    for suffix in ("", "_informative"):  # margin keeps the unsuffixed keys, BALD adds its own
        fraction = report[f"label_fraction_to_match_random{suffix}"]
        assert fraction is None or 0 < fraction <= 1
        assert len(report[f"label_fraction_per_split_reached_and_held{suffix}"]) == 2
        low, high = report[f"label_fraction_to_match_random_ci95{suffix}"]
        assert (low is None or 0 < low <= 1) and (high is None or low <= high <= 1)
        assert 0 <= report[f"label_fraction_share_of_resamples_meeting_goal{suffix}"] <= 1
    assert 0 <= report["informative_final_accuracy"] <= 1


def test_the_interval_resamples_splits_and_counts_how_often_the_goal_is_met():
    from bench.active_learning import bootstrap_fraction

    labels = [10, 20, 30, 40]
    random_runs = [[0.25, 0.5, 0.5, 0.5]] * 2  # random's final: 0.5
    # Split 1 reaches 0.5 at 20 labels, split 2 only at 40; their mean also only at 40. So a
    # resample is 0.5 if it drew split 1 twice (a quarter of the time) and 1.0 otherwise.
    order_runs = [[0.25, 0.5, 0.5, 0.5], [0.25, 0.25, 0.25, 0.5]]

    result = bootstrap_fraction(labels, order_runs, random_runs)

    assert result["label_fraction_to_match_random_ci95"] == [0.5, 1.0]
    assert result["label_fraction_share_of_resamples_meeting_goal"] == pytest.approx(0.25, abs=0.03)


def test_both_orders_are_resampled_by_the_same_draw_of_splits():
    from bench.active_learning import bootstrap_fraction

    # In each split the order starts where random ends, and the splits differ. Drawn together,
    # every resample's order mean starts at its random mean's end (fraction 0.5); drawn apart,
    # split 1's order against split 2's random would never get there.
    random_runs = [[0.25, 0.5], [0.25, 0.75]]
    order_runs = [[0.5, 0.5], [0.75, 0.75]]

    result = bootstrap_fraction([10, 20], order_runs, random_runs)

    assert result == {"label_fraction_to_match_random_ci95": [0.5, 0.5],
                      "label_fraction_share_of_resamples_meeting_goal": 1.0}  # fmt: skip


def test_an_order_that_never_reaches_random_has_no_upper_bound():
    from bench.active_learning import bootstrap_fraction

    never = bootstrap_fraction([10, 20], [[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.75], [0.5, 0.75]])

    assert never == {"label_fraction_to_match_random_ci95": [None, None],
                     "label_fraction_share_of_resamples_meeting_goal": 0.0}  # fmt: skip


def test_it_refuses_a_budget_smaller_than_a_batch(tmp_path):
    data = hh_file(tmp_path / "hh.jsonl", 20)

    result = run_bench("--data", str(data), "--features", "length", "--budget", "5", "--batch", "10")

    assert result.returncode != 0
    assert "--budget must be at least --batch" in result.stderr
