"""The heartbeat thread shared by training runs, generation jobs and exports."""

import time

import pytest

from alignweb.heartbeat import Heartbeat


def test_it_beats_until_the_block_ends():
    beats = []
    with Heartbeat(lambda: beats.append(1) or True, interval=0.05, name="t"):
        time.sleep(0.4)
    count = len(beats)
    time.sleep(0.15)
    assert count >= 3 and len(beats) == count  # none after the block


def test_it_stops_once_the_work_is_no_longer_its_own():
    beats = []
    with Heartbeat(lambda: beats.append(1) and False, interval=0.05, name="t"):
        time.sleep(0.3)
    assert len(beats) == 1


@pytest.mark.django_db
def test_a_failing_beat_does_not_end_the_beating(caplog):
    calls = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return True

    with Heartbeat(flaky, interval=0.05, name="flaky"):
        time.sleep(0.4)
    assert len(calls) >= 3
    assert "the database went away" in caplog.text
