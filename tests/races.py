"""Helpers that put a concurrent change at an exact point of a service, for race tests."""

from contextlib import contextmanager


def change_before_each_transaction(monkeypatch, service_module, rows, **changes) -> None:
    """Make ``rows.update(**changes)`` run right before every ``transaction.atomic`` block that
    ``service_module`` opens: for a reaper, between reading the silent rows and writing each one,
    as a worker that beats, finishes or claims at that moment would."""
    real_atomic = service_module.transaction.atomic

    @contextmanager
    def changed_first(*args, **kwargs):
        rows.update(**changes)
        with real_atomic(*args, **kwargs):
            yield

    monkeypatch.setattr(service_module.transaction, "atomic", changed_first)
