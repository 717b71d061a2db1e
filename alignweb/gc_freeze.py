"""Keep Python's cycle collector away from a web process's long-lived objects.

Every request leaves some reference cycles behind (Django's and DRF's request, view and response
objects point at each other), so the cycle collector runs often, and every few seconds it makes a
full pass over everything the process holds: the modules, the URL resolver, the connections, the
caches. A full pass holds the GIL for all threads: 50-130 ms each, 12 in 20 s, under the load
bench (``bench/annotation_load.py``, gc callbacks timed in the gunicorn worker), which is where its
p99 came from. Objects that live as long as the process need no collecting, so they are frozen
(``gc.freeze``: moved to a generation the collector never scans): once when the app is loaded,
and again after the first requests, which build ~40% of them (resolver caches, prepared
statements, per-thread connections). After that a full pass covers only what the later requests
left, and takes well under a millisecond.

Frozen objects are never collected: cycles among them that later became garbage would stay. The
second freeze happens once, after a collection, so at most the few requests in flight at that
moment are kept (a few hundred objects).
"""

import gc
import threading

WARM_UP_REQUESTS = 200

_lock = threading.Lock()
_served = 0
_frozen = False


def freeze_now() -> None:
    gc.collect()
    gc.freeze()


def freeze_after_warm_up(**_signal) -> None:
    """A ``request_finished`` receiver: freeze once ``WARM_UP_REQUESTS`` requests are done."""
    global _served, _frozen
    if _frozen:
        return
    with _lock:
        _served += 1
        if _frozen or _served < WARM_UP_REQUESTS:
            return
        _frozen = True
    freeze_now()
