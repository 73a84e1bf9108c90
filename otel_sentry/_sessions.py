"""Release health: every HTTP request is a session, sent as per-minute aggregates.

What sentry-sdk sends from a server (``auto_session_tracking`` in request mode): a ``sessions``
envelope item ``{"attrs": {"release", "environment"}, "aggregates": [{"started": <minute>, "exited",
"errored", "crashed"}]}``. A request that produced no error event *exited*; one whose error events
were all handled *errored*; one with an unhandled exception (``mechanism.handled: false``) *crashed*
(sentry-sdk's rule: it reads the same flag from the events it sends). Each session counts once.

sentry-sdk's ``SessionFlusher`` is not reused: a forked child inherits its pending aggregates and
sends the parent's sessions a second time (and may inherit its lock held), and it sends through the
client's transport. The counting is a few lines; here the aggregates are handed to otel_sentry's
delivery (bounded queues, retries, rate limits, client reports, spool) once a minute, from the first
request of a new minute or a timer thread when traffic stops, and at flush and shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from ._fork import reset_in_child
from ._transport import SESSION  # Sentry's data category (rate limits, client reports)

if TYPE_CHECKING:
    from ._events import CapturedError
    from ._runtime import Runtime

logger = logging.getLogger("otel_sentry")

EXITED, ERRORED, CRASHED = "exited", "errored", "crashed"
#: Seconds between flushes (sentry-sdk's flush_interval).
FLUSH_INTERVAL = 60.0
#: Minute buckets held at most; with the once-a-minute flush there are one or two.
MAX_BUCKETS = 60


def session_status(errors: Sequence[CapturedError]) -> str:
    """A request's session status from the error events it produced, as sentry-sdk decides it."""
    exceptions = [error for error in errors if error.values]
    if any(not error.handled for error in exceptions):
        return CRASHED
    return ERRORED if exceptions else EXITED


def _started(minute: int) -> str:
    from sentry_sdk.utils import format_timestamp  # the format sentry-sdk sends

    return format_timestamp(datetime.fromtimestamp(minute, timezone.utc))


class SessionAggregator:
    """Counts request sessions per minute for one release and environment; thread-safe."""

    def __init__(
        self,
        runtime: Runtime,
        release: str,
        environment: Optional[str],
        *,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.attrs: dict[str, str] = {"release": release}
        if environment:
            self.attrs["environment"] = environment
        self.flush_interval = flush_interval
        self.sent: Counter[str] = Counter()  # statuses handed to delivery, for tests and stats
        self._init_state()
        reset_in_child(self, "_init_state")  # the parent reports its own sessions

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[int, Counter[str]] = {}
        self._stop = threading.Event()
        self._timer: Optional[threading.Thread] = None
        self._timer_pid: Optional[int] = None
        self._closed = False

    def record(self, status: str, now: Optional[float] = None) -> None:
        """One request ended with this status."""
        minute = int((time.time() if now is None else now) // 60) * 60
        with self._lock:
            if self._closed:
                return
            bucket = self._buckets.get(minute)
            if bucket is None:
                bucket = self._buckets[minute] = Counter()
                while len(self._buckets) > MAX_BUCKETS:  # only if flushing stopped working
                    self._buckets.pop(min(self._buckets))
                    self.runtime.counters["session.dropped.buckets_full"] += 1
            bucket[status] += 1
            due = min(self._buckets) < minute
        if due:
            self.flush()
        self._ensure_timer()

    def pending(self) -> dict[int, Counter[str]]:
        with self._lock:
            return {minute: Counter(bucket) for minute, bucket in self._buckets.items()}

    def payload(self, buckets: dict[int, Counter[str]]) -> dict[str, Any]:
        aggregates = []
        for minute in sorted(buckets):
            counts = buckets[minute]
            aggregate: dict[str, Any] = {"started": _started(minute)}
            aggregate.update({s: counts[s] for s in (EXITED, ERRORED, CRASHED) if counts[s]})
            aggregates.append(aggregate)
        return {"attrs": dict(self.attrs), "aggregates": aggregates}

    def flush(self) -> None:
        """Hand what is counted to delivery (never blocks on I/O)."""
        with self._lock:
            buckets, self._buckets = self._buckets, {}
        if not buckets:
            return
        from sentry_sdk.envelope import Envelope, Item, PayloadRef

        headers: dict[str, Any] = {"sent_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if self.runtime.settings.dsn:
            headers["dsn"] = self.runtime.settings.dsn
        item = Item(payload=PayloadRef(json=self.payload(buckets)), type="sessions")
        body = Envelope(headers=headers, items=[item]).serialize()
        for transport in self.runtime.transports:
            transport.submit(body, SESSION)
        for counts in buckets.values():
            self.sent.update(counts)

    def _ensure_timer(self) -> None:
        """The timer flushes when traffic stops; one per process, started again in a forked child
        only once it serves a request."""
        if self._timer_pid == os.getpid():
            return
        with self._lock:
            if self._timer_pid == os.getpid() or self._closed:
                return
            self._timer_pid = os.getpid()
            self._timer = threading.Thread(target=self._run, name="otel_sentry.sessions", daemon=True)
            self._timer.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:
                self.runtime.internal_error("flushing sessions")

    def close(self) -> None:
        """Flush and stop the timer (at shutdown); later requests are not counted."""
        self.flush()
        with self._lock:
            self._closed = True
        self._stop.set()
        timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(1.0)


def for_runtime(runtime: Runtime) -> Optional[SessionAggregator]:
    """The aggregator, when release health is on: a release is set and tracking is not off."""
    settings = runtime.settings
    release = runtime.defaults.release
    if not settings.auto_session_tracking or not release:
        return None
    return SessionAggregator(runtime, release, runtime.defaults.environment)


def request_ended(runtime: Runtime, errors: Sequence[CapturedError]) -> None:
    """Called by the capture middleware once per HTTP request, before its events are emitted."""
    sessions: Optional[SessionAggregator] = getattr(runtime, "sessions", None)
    if sessions is None:
        return
    try:
        sessions.record(session_status(errors))
    except Exception:
        runtime.internal_error("counting a session")
