"""The leaderboard bench seeds real arena votes, fits the board cold, reads it cached, and cleans up."""

import json

import pytest

from annotation.models import Project
from bench import leaderboard_speed


@pytest.mark.django_db
def test_the_leaderboard_bench_times_a_cold_fit_and_a_cache_hit_on_the_votes_it_made(capsys):
    result = leaderboard_speed.main(["--battles", "50", "--rounds", "20"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result))
    for key in ("battles", "cold_s", "cached_s", "speed_probe_ms"):
        assert key in printed, key
    assert printed["battles"] == 50  # every vote it made is an arena battle
    assert printed["cold_s"] > 0 and printed["cached_s"] > 0
    assert printed["cached_equals_cold"] is True
    assert len(printed["speed_probe_ms"]) == 2
    assert not Project.objects.filter(slug__startswith="bench-board-").exists()
