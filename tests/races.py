"""Helpers that put a concurrent writer at an exact point of a service, for race tests."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def in_another_transaction(write: Callable[[], object]) -> Iterator[list]:
    """Run ``write()`` in a transaction of another connection (a worker's thread) and keep that
    transaction open, holding the row locks ``write`` took, until the ``with`` block ends; then
    commit it. Yields a list that holds ``write``'s result once it has run. Needs a test database
    that commits (``django_db(transaction=True)``)."""
    written, release, result, errors = threading.Event(), threading.Event(), [], []

    def worker() -> None:
        try:
            with transaction.atomic():
                result.append(write())
                written.set()
                release.wait(timeout=30)
        except Exception as error:  # shown in the test's thread below
            errors.append(error)
            written.set()
        finally:
            connection.close()

    thread = threading.Thread(target=worker, name="another-transaction")
    thread.start()
    written.wait(timeout=30)
    try:
        if errors:
            raise errors[0]
        yield result
    finally:
        release.set()
        thread.join(timeout=30)
