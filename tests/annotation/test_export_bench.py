"""The export benchmark runs end to end at a tiny size (the real run is ``--rows 1000000``)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_benchmark_seeds_exports_and_reports_one_json_line():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("The export benchmark needs PostgreSQL.")
    parts = urlsplit(url)
    scratch = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench_smoke"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "export_speed.py"), "--rows", "301", "--database-url", scratch],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["rows"] == 301
    assert set(report["formats"]) == {"trl", "votes"}
    votes, trl = report["formats"]["votes"], report["formats"]["trl"]
    assert votes["judgements"] == votes["rows_written"] == 301
    assert 0 < trl["rows_written"] <= 101  # one row per comparison with a clear majority
    for figures in (votes, trl):
        assert figures["judgements_per_s"] > 0
        assert 0 < figures["peak_rss_mb"] < 1000
