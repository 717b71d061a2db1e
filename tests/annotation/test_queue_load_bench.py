"""The load benchmark runs end to end at a tiny size: gunicorn, token auth, next -> judgement."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def server_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/postgres"


def test_the_benchmark_reports_one_json_object_with_no_duplicates_or_errors():
    command = [
        sys.executable,
        str(ROOT / "bench" / "annotation_load.py"),
        "--annotators", "2",
        "--seconds", "2",
        "--warmup", "0.5",
        "--sizes", "1000,2000",
        "--workers", "1",
        "--threads", "2",
        "--solo-seconds", "1",
        "--database-url", server_url(),
        "--bench-db", f"alignweb_bench_smoke_{os.getpid()}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["judgements_per_s"] > 0
    assert report["duplicates"] == 0
    assert report["errors"] == 0, report["by_size"]
    assert report["counter_mismatches"] == 0
    assert all(ms > 0 for ms in report["machine"]["python_speed_ms_before_after"])
    for endpoint in ("next", "judgement"):
        assert report["latency_ms"][endpoint]["p99"] >= report["latency_ms"][endpoint]["p50"] > 0
    assert set(report["next_p95_ms_by_size"]) == {"1000", "2000"}
    assert report["next_p95_ratio_largest_to_smallest"] > 0
    assert set(report["next_p95_ms_by_size_one_annotator_alone"]) == {"1000", "2000"}
    assert (
        report["by_size"]["1000"]["integrity"]["judgements_in_db"] >= report["by_size"]["1000"]["judgements"]
    )


def test_the_benchmark_refuses_another_database_with_a_clear_message():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "annotation_load.py"), "--database-url", "mysql://localhost/x"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr
