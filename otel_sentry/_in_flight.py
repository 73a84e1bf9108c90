"""Server spans whose request is still being handled, so their transaction waits for the outcome.

The instrumentation can end a server span before the request is over (a streaming response that
breaks after it started), and the batch processor may export the span at once. The transaction must
still say how the request ended (``internal_error``), which the capture middleware learns only when
the request settles. So the middleware registers the span when the request starts and settles it at
the end; the ``sentry`` exporter holds a root that arrives while its request is in flight and sends
it when the request settles (the listener runs on the request's thread, after its response: this
happens only in that race). Bounded: a span never settled is forgotten after ``MAX_WAIT`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

MAX_WAIT = 60.0
_KEPT = 4096

_lock = threading.Lock()
_in_flight: OrderedDict[int, float] = OrderedDict()  # span id -> monotonic start
_listeners: list[Callable[[int], None]] = []


def started(span_id: int) -> None:
    with _lock:
        _in_flight[span_id] = time.monotonic()
        while len(_in_flight) > _KEPT:
            _in_flight.popitem(last=False)


def settled(span_id: int) -> None:
    with _lock:
        known = _in_flight.pop(span_id, None) is not None
        listeners = list(_listeners)
    if known:
        for listener in listeners:
            listener(span_id)


def is_in_flight(span_id: int) -> bool:
    with _lock:
        since = _in_flight.get(span_id)
    return since is not None and time.monotonic() - since < MAX_WAIT


def add_listener(listener: Callable[[int], None]) -> None:
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Callable[[int], None]) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)
