"""Proof of life for long work done in a worker, so that a reaper can tell slow work from a dead
worker: the leased jobs of ``alignweb.jobs`` (training runs, generation jobs and exports)."""

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


def stale_after() -> timedelta:
    """How old a heartbeat may get before its worker counts as dead (``ALIGNWEB_RUN_STALE_SECONDS``)."""
    return timedelta(seconds=getattr(settings, "ALIGNWEB_RUN_STALE_SECONDS", 120))


def beat_interval(stale: timedelta) -> float:
    """Four beats per staleness period, so one late beat is not taken for a dead worker."""
    return max(1.0, stale.total_seconds() / 4)


def new_worker_id() -> str:
    """A fresh id per claim: host, process and a random part, so even one process's attempts differ."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """A daemon thread that calls ``beat()`` every ``interval`` seconds while the ``with`` block
    runs, and stops once ``beat()`` returns False (the work is no longer this worker's). It dies
    with the process, which is exactly when the work should be reaped."""

    def __init__(self, beat: Callable[[], bool], *, interval: float, name: str) -> None:
        self.beat = beat
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                close_old_connections()
                try:
                    if not self.beat():
                        return
                except Exception:
                    # A database restart must not silence the beats for good: the work would go
                    # on and be reaped as dead. Try again next time.
                    logger.exception(
                        "Heartbeat %s failed; trying again in %.0f s.", self._thread.name, self.interval
                    )
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
