"""Keep Python's cycle collector away from a web process's long-lived objects.

Every request leaves some reference cycles behind (~74 objects: Django's and DRF's request, view
and response point at each other), so the cycle collector runs often, and every couple of seconds
it makes a full pass over everything the process holds: the modules, the URL resolver, the
connections, the caches. A full pass holds the GIL for all threads. Under the load bench
(``bench/annotation_load.py``, gc callbacks timed in the gunicorn worker) that was 12 passes of
50-130 ms in 20 s. Objects that live as long as the process need no collecting, so they are
frozen (``gc.freeze``: moved to a generation the collector never scans): once when the app is
loaded, and again after the first requests, which build ~40% of them (resolver caches, prepared
statements, per-thread connections). After that a full pass covers only what later requests left:
6-40 ms each under the same bench, 0.15-0.33 s per 20 s instead of 1.0-1.1 s.

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
