"""The web process freezes what it has loaded, once, after its first requests."""

import gc

import pytest
from django.core.signals import request_finished

from alignweb import gc_freeze


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(gc_freeze, "_served", 0)
    monkeypatch.setattr(gc_freeze, "_frozen", False)
    monkeypatch.setattr(gc_freeze, "WARM_UP_REQUESTS", 5)
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process must not keep its objects out of collection


def test_it_freezes_once_after_the_warm_up_requests(fresh_state, monkeypatch):
    calls = []
    real_freeze = gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1) or real_freeze())
    request_finished.connect(gc_freeze.freeze_after_warm_up, dispatch_uid="test.gc_freeze")
    try:
        for _ in range(4):
            request_finished.send(sender=None)
        assert calls == [] and gc.get_freeze_count() == 0
        request_finished.send(sender=None)
        assert calls == [1]
        assert gc.get_freeze_count() > 0
        for _ in range(20):
            request_finished.send(sender=None)
        assert calls == [1]
    finally:
        request_finished.disconnect(dispatch_uid="test.gc_freeze")


def test_what_is_frozen_is_left_out_of_full_collections(fresh_state):
    class Node:
        pass

    keep = [Node() for _ in range(1000)]
    gc_freeze.freeze_now()
    assert gc.get_freeze_count() >= len(keep)
    assert not any(obj is keep for obj in gc.get_objects())  # the frozen generation is not scanned
