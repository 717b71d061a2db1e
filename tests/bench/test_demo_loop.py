"""`make demo`'s closed loop, end to end on the bundled SmolLM2 and MiniLM: bench/demo_loop.py starts
scripts/demo.sh on a fresh var/ (the embedded PostgreSQL, filesystem broker, real Celery workers) and
drives it through the API until an annotator is served a tuned-vs-base comparison (~2 minutes on 2 CPU
cores), then stops it with nothing left running."""

import json

import psutil
import pytest

from alignweb import embedded_db
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
    assert (embedded_db.data_dir(var_dir) / "PG_VERSION").is_file() and any((var_dir / "broker").rglob("*"))
    # And stopped whole: no server on its data directory, no process started from its var dir.
    assert embedded_db.running_pid(var_dir) is None
    commands = [str(process.info["cmdline"]) for process in psutil.process_iter(["cmdline"])]
    assert [command for command in commands if str(var_dir) in command] == []
