"""`make demo`'s closed loop, end to end on the bundled SmolLM2 and MiniLM: bench/demo_loop.py starts
scripts/demo.sh on a fresh var/ (SQLite, filesystem broker, real Celery workers) and drives it through
the API until an annotator is served a tuned-vs-base comparison (~2 minutes on 2 CPU cores)."""

import json

import pytest

from bench import demo_loop
from bench.demo_loop import REPO
from training.demo_configs import DEMO_CONFIGS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_demo_closes_the_loop_on_the_bundled_models(tmp_path, capsys):
    var_dir = tmp_path / "var"

    result = demo_loop.main(["--var-dir", str(var_dir), "--timeout", "900"])

    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    comparisons = (REPO / "annotation" / "demo" / "comparisons.jsonl").read_text().splitlines()
    assert result["votes"] == 2 * len([line for line in comparisons if line.strip()])  # both annotators, all
    assert result["reward_run"]["steps"] == DEMO_CONFIGS["reward_model"]["max_steps"]
    assert result["dpo_run"]["steps"] == DEMO_CONFIGS["dpo"]["max_steps"]
    assert result["generation"]["comparisons_created"] >= 1
    assert result["queue_order"] == "informative"
    assert 0 < result["loop_seconds"] < 3 * 900
    # It ran on the embedded defaults, although this suite's environment names PostgreSQL and Redis.
    assert (var_dir / "alignweb.sqlite3").is_file() and any((var_dir / "broker").rglob("*"))
