"""Delivery of envelopes to Sentry, Spotlight or the local inbox, off the request path.

sentry-sdk's ``HttpTransport`` is not reused as a whole: it keeps one 100-envelope queue shared by
errors and transactions, never retries a 5xx or a connection failure, drops rate limits with a
fractional ``retry_after``, forgets the client report riding on an envelope that failed, and its queue
is inherited by a forked child, which then sends the parent's events again. Its pieces are reused
(``Envelope``/``Item`` serialization, ``Dsn`` auth headers, the client-report item shape); the rest is
here:

* one queue per category, bounded in count and bytes, errors always taken first;
* one worker thread; a failed attempt sets a "not before" time for the destination instead of
  sleeping, so ``flush``/``shutdown`` are never stuck behind a backoff and an error that arrives during
  a transaction's backoff goes out first at the next attempt;
* retries with jittered exponential backoff on 5xx and connection failures (``Retry-After`` honoured).
  While nothing gets through it is an outage and envelopes wait (bounded); an envelope is dropped after
  ``max_attempts`` failures only once the destination has accepted others meanwhile (it is the problem);
* 429 and ``X-Sentry-Rate-Limits`` (any status) per category; 413 and other 4xx are never retried;
* every discarded envelope counted by (reason, category) and reported to Sentry in client reports;
* an optional on-disk spool (``_spool.py``) for what does not fit in memory or is left at shutdown;
* fork safety: the child starts empty, with fresh locks, whatever the parent was doing.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from . import _client_reports as reports
from ._destinations import (
    ALL_CATEGORIES,
    Accepted,
    DeliveryError,
    Destination,
    HttpDestination,
    InboxDestination,
)
from ._failsafe import internal_error
from ._spool import Spool

__all__ = [
    "CATEGORIES",
    "ERROR",
    "TRANSACTION",
    "DeliveryError",
    "Destination",
    "HttpDestination",
    "InboxDestination",
    "Transport",
    "TransportStats",
]

logger = logging.getLogger("otel_sentry")

ERROR = "error"
TRANSACTION = "transaction"
LOG = "log_item"  # Sentry's rate-limit/client-report category for logs (see _log_exporter)
SESSION = "session"  # release health aggregates (see _sessions)
PROFILE_CHUNK = "profile_chunk"  # continuous profiling (see _profile_chunks)
# a transaction's profile rides in the transaction's envelope: it has a rate limit of its own, and is
# counted with the transaction when that envelope is dropped, never queued on its own
PROFILE = "profile"
CATEGORIES = (ERROR, TRANSACTION, LOG, SESSION, PROFILE_CHUNK)  # selection order: errors first
_REPORT = "client_report"


@dataclass
class _Queued:
    body: bytes
    category: str
    spans: int = 0
    profiles: int = 0  # profile items riding with a transaction, counted with it when it is dropped
    attempts: int = 0
    first_failure: Optional[float] = None
    claimed: Optional[Path] = None  # spool file this envelope came from
    abandoned: bool = False  # counted at shutdown while its attempt was still running


@dataclass
class _SpoolTake:
    category: str


@dataclass
class _ReportOnly:
    pass


_Job = Union[_Queued, _SpoolTake, _ReportOnly]


@dataclass
class TransportStats:
    """A snapshot of one transport's accounting: submitted == delivered + dropped + queued + spooled."""

    destination: str
    submitted: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    queued_bytes: Counter[str] = field(default_factory=Counter)
    spooled: int = 0
    pending_reports: int = 0
    reported: int = 0


def _register_fork_hook(transport: Transport) -> None:
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(transport)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            alive._after_fork()

    os.register_at_fork(after_in_child=after_in_child)


class Transport:
    """Bounded, non-blocking delivery to one destination, with one worker thread per process."""

    def __init__(
        self,
        destination: Destination,
        *,
        max_events: int = 1000,
        max_bytes: int = 32 * 1024 * 1024,
        spool: Optional[Spool] = None,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 5.0,
        report_interval: float = 10.0,
    ) -> None:
        self.destination = destination
        self.spool = spool
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._report_interval = report_interval
        self._reports_enabled = bool(getattr(destination, "client_reports", False))
        self._init_state()
        if spool is not None:
            self._pending_reports.update(spool.load_reports())
            if spool.pending() or self._pending_reports:
                self._ensure_worker()
        _register_fork_hook(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._queues: dict[str, deque[_Queued]] = {category: deque() for category in CATEGORIES}
        self._queued_bytes = dict.fromkeys(CATEGORIES, 0)
        self._rate_limited: dict[str, float] = {}
        self._not_before = 0.0
        self._failures = 0
        self._last_success = 0.0
        self._last_sent = time.monotonic()
        self._report_now = False
        self._in_flight: Optional[_Job] = None
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        self._logged: set[str] = set()
        self.submitted: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.requests: Counter[str] = Counter()
        self._pending_reports: Counter[tuple[str, str]] = Counter()
        self._riding: Counter[tuple[str, str]] = Counter()  # on the request in flight
        self._reported = 0

    def _after_fork(self) -> None:
        # The child gets a copy of the parent's queues and counters; the parent delivers and reports
        # those, so the child starts empty (no event is sent twice) with fresh locks (the parent's may
        # have been held by a thread that does not exist in the child).
        self._init_state()
        reset = getattr(self.destination, "reset_after_fork", None)
        if reset is not None:
            reset()
        if self.spool is not None:
            self.spool.after_fork()

    # -- the request side: never blocks on I/O -----------------------------------------------------
    def is_rate_limited(self, category: str, now: Optional[float] = None) -> bool:
        now = time.monotonic() if now is None else now
        limits = self._rate_limited
        return max(limits.get(category, 0.0), limits.get(ALL_CATEGORIES, 0.0)) > now

    def submit(self, body: bytes, category: str, *, spans: int = 0, profiles: int = 0) -> bool:
        """Queue one serialized envelope. False when it was dropped (and counted), never raises.

        ``spans`` is the number of spans a transaction carries, for the client report.
        """
        spill = False
        with self._lock:
            self.submitted[category] += 1
            if self._closed:
                self._count_drop(reports.SHUTDOWN, category, spans, profiles)
                return False
            dropped = self.is_rate_limited(category)
            queue = self._queues[category]
            if dropped:
                self._count_drop(reports.RATELIMIT_BACKOFF, category, spans, profiles)
            elif len(queue) >= self._max_events or self._queued_bytes[category] + len(body) > self._max_bytes:
                spill = True
            else:
                queue.append(_Queued(body, category, spans, profiles))
                self._queued_bytes[category] += len(body)
                self._wakeup.notify()
        # Only when memory is full: a small local file write, never network I/O.
        if spill and (self.spool is None or not self.spool.put(body, category)):
            with self._lock:
                self._count_drop(reports.QUEUE_OVERFLOW, category, spans, profiles)
            dropped = True
        self._ensure_worker()  # also to report what was just dropped
        return not dropped

    def _ensure_worker(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="otel_sentry.transport", daemon=True)
                self._thread.start()

    def _count_drop(self, reason: str, category: str, spans: int = 0, profiles: int = 0) -> None:
        """Count one discarded envelope and what rode in it; the caller holds the lock."""
        self.dropped[(reason, category)] += 1
        if profiles:
            self.dropped[(reason, PROFILE)] += profiles
        reported = reports.reportable(reason)
        if self._reports_enabled and reported is not None:
            self._pending_reports[(reported, category)] += 1
            if spans:
                self._pending_reports[(reported, "span")] += spans
            if profiles:
                self._pending_reports[(reported, PROFILE)] += profiles
            self._wakeup.notify()  # the worker may be idle with nothing due

    def discard(self, reason: str, category: str, quantity: int) -> None:
        """Count items left out of an envelope before it was submitted (a rate-limited profile)."""
        with self._lock:
            self.dropped[(reason, category)] += quantity
            reported = reports.reportable(reason)
            if self._reports_enabled and reported is not None:
                self._pending_reports[(reported, category)] += quantity
                self._wakeup.notify()

    def _drop(self, item: _Queued, reason: str) -> None:
        with self._lock:
            if item.abandoned:
                return
            self._count_drop(reason, item.category, item.spans, item.profiles)
        if item.claimed is not None and self.spool is not None:
            self.spool.done(item.claimed)

    # -- the worker ---------------------------------------------------------------------------------
    def _next_job(self) -> Optional[_Job]:
        with self._lock:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                if self._not_before > now:
                    self._wakeup.wait(self._not_before - now)
                    continue
                job = self._select(now)
                if job is not None:
                    self._in_flight = job
                    return job
                self._wakeup.wait(self._idle_wait(now))

    def _select(self, now: float) -> Optional[_Job]:
        """Errors first; a category inside its rate-limit window is dropped, never sent."""
        for category in CATEGORIES:
            queue = self._queues[category]
            while queue:
                item = queue.popleft()
                self._queued_bytes[category] -= len(item.body)
                if self.is_rate_limited(category, now):
                    self._count_drop(reports.RATELIMIT_BACKOFF, category, item.spans, item.profiles)
                    if item.claimed is not None and self.spool is not None:
                        self.spool.done(item.claimed)
                    continue
                return item
            if self.spool is not None and self.spool.has(category):
                return _SpoolTake(category)
        if self.spool is not None and self.spool.rescan_due():
            return _SpoolTake("")
        due = self._report_now or now - self._last_sent >= self._report_interval
        if self._pending_reports and due and not self.is_rate_limited(ALL_CATEGORIES, now):
            return _ReportOnly()
        return None

    def _idle_wait(self, now: float) -> Optional[float]:
        waits = []
        if self._pending_reports:
            waits.append(max(0.05, self._last_sent + self._report_interval - now))
        if self.spool is not None:
            waits.append(5.0)
        return min(waits) if waits else None

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                if isinstance(job, _Queued):
                    self._attempt(job)
                elif isinstance(job, _SpoolTake):
                    self._take_from_spool(job.category)
                else:
                    self._send_report()
            except Exception:  # a bug here must never kill delivery for the rest of the process
                if isinstance(job, _Queued):
                    self._drop(job, reports.INTERNAL_ERROR)
                internal_error(f"delivering an envelope to {self.destination.name}")  # raises in tests
            finally:
                with self._lock:
                    self._in_flight = None
                    self._wakeup.notify_all()

    def _take_from_spool(self, category: str) -> None:
        assert self.spool is not None
        if not category:
            self.spool.rescan()
            return
        taken = self.spool.claim(category)
        if taken is None:
            return
        claimed, body = taken
        item = _Queued(body, category, claimed=claimed)
        with self._lock:
            if self.is_rate_limited(category):
                self._count_drop(reports.RATELIMIT_BACKOFF, category)
                drop = True
            else:
                self._queues[category].appendleft(item)
                self._queued_bytes[category] += len(body)
                drop = False
        if drop:
            self.spool.done(claimed)

    def _attempt(self, item: _Queued) -> None:
        body = item.body
        riding: Counter[tuple[str, str]] = Counter()
        with self._lock:
            if self._reports_enabled and self._pending_reports:
                riding, self._pending_reports = self._pending_reports, Counter()
                self._riding = riding
            self.requests[item.category] += 1
        if riding:
            body = reports.append_report(body, riding)
        try:
            accepted = self.destination.send(body, item.category)
        except DeliveryError as exc:
            self._restore_reports(riding)
            self._failed(item, exc)
            return
        except Exception:
            self._restore_reports(riding)
            raise
        self._succeeded(accepted, riding)
        with self._lock:
            if not item.abandoned:
                self.delivered[item.category] += 1
        if item.claimed is not None and self.spool is not None:
            self.spool.done(item.claimed)

    def _send_report(self) -> None:
        with self._lock:
            riding, self._pending_reports = self._pending_reports, Counter()
            self._riding = riding
            self._report_now = False
            self.requests[_REPORT] += 1
        if not riding:
            return
        try:
            accepted = self.destination.send(reports.report_envelope(riding), _REPORT)
        except DeliveryError as exc:
            self._restore_reports(riding)
            with self._lock:
                self._merge_limits(exc.limits)
                if exc.retry:
                    self._back_off(exc.retry_after)
                else:
                    self._last_sent = time.monotonic()  # do not hammer a destination that refuses it
            return
        self._succeeded(accepted, riding)

    def _succeeded(self, accepted: Accepted, riding: Counter[tuple[str, str]]) -> None:
        with self._lock:
            self._riding = Counter()
            self._merge_limits(accepted.limits)  # Sentry may announce limits on a 200 too
            self._failures = 0
            self._last_success = self._last_sent = time.monotonic()
            self._reported += sum(riding.values())

    def _restore_reports(self, riding: Counter[tuple[str, str]]) -> None:
        with self._lock:
            self._riding = Counter()
            if riding and not self._closed:  # once closed, shutdown has already kept them
                self._pending_reports.update(riding)

    def _failed(self, item: _Queued, exc: DeliveryError) -> None:
        with self._lock:
            self._merge_limits(exc.limits)
            self._last_sent = time.monotonic()
        if exc.status == 429:
            self._drop(item, reports.RATE_LIMITED)
            return
        if not exc.retry:
            if exc.status == 413:
                hint = "the envelope is larger than the server accepts"
            elif exc.status in (401, 403):
                hint = "the server refused the credentials; check SENTRY_DSN"
            else:
                hint = "the server rejected the envelope"
            self._log_once(f"status-{exc.status}", f"{exc}: {hint}; dropped, not retried")
            self._drop(item, reports.SEND_ERROR)
            return
        now = time.monotonic()
        with self._lock:
            if item.abandoned:
                return
            self._back_off(exc.retry_after)
            item.attempts += 1
            if item.first_failure is None:
                item.first_failure = now
            poison = item.attempts >= self._max_attempts and self._last_success > item.first_failure
        if poison:
            logger.debug(
                "otel_sentry: dropped %s envelope after %d attempts: %s", item.category, item.attempts, exc
            )
            self._drop(item, reports.NETWORK_ERROR if exc.status is None else reports.SEND_ERROR)
            return
        self._log_once("outage", f"{exc}; retrying with backoff (further failures are counted, not logged)")
        with self._lock:
            queue = self._queues[item.category]
            # After max_attempts, let the next envelope probe the destination (this one may be the problem).
            if item.attempts % self._max_attempts == 0:
                queue.append(item)
            else:
                queue.appendleft(item)
            self._queued_bytes[item.category] += len(item.body)

    def _back_off(self, retry_after: Optional[float]) -> None:
        """Set the destination's "not before" time; the caller holds the lock."""
        self._failures += 1
        if retry_after is not None:
            delay = min(retry_after, 300.0)
        else:
            delay = min(self._backoff_cap, self._backoff_base * 2 ** (self._failures - 1))
            delay *= 0.5 + random.random()  # jitter: workers that failed together do not retry together
        self._not_before = max(self._not_before, time.monotonic() + delay)

    def _merge_limits(self, limits: dict[str, float]) -> None:
        for category, until in limits.items():
            # Keep the longest window per category, as Sentry's SDK spec asks.
            self._rate_limited[category] = max(self._rate_limited.get(category, 0.0), until)

    def _log_once(self, key: str, message: str, *, exc_info: bool = False) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        logger.warning("otel_sentry: %s: %s", self.destination.name, message, exc_info=exc_info)

    # -- lifecycle ----------------------------------------------------------------------------------
    def _busy(self) -> bool:
        spooled = self.spool.pending() if self.spool is not None else 0
        reports_due = bool(self._pending_reports) and not self.is_rate_limited(ALL_CATEGORIES)
        return bool(any(self._queues.values()) or self._in_flight is not None or spooled or reports_due)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is delivered or dropped; True if it all went.

        Returns within ``timeout`` even when called from a signal handler that interrupted a thread
        holding the lock (the lock is only ever waited for with a timeout here).
        """
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            return False
        try:
            if self._pending_reports:
                self._report_now = True
                self._wakeup.notify_all()
            while self._busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wakeup.wait(remaining)
        finally:
            self._lock.release()
        return True

    def shutdown(self, timeout: float) -> None:
        """Deliver what fits in the timeout; spool the rest if there is a spool, else count it dropped.
        Later submissions are counted as dropped."""
        self._stop(timeout, close=True)

    def drain(self, timeout: float) -> bool:
        """As :meth:`shutdown`, but the transport stays open: the process may be about to die by a
        signal (nothing after this runs), or may go on. True when everything was delivered."""
        return self._stop(timeout, close=False)

    def _stop(self, timeout: float, *, close: bool) -> bool:
        deadline = time.monotonic() + timeout
        if self._lock.acquire(timeout=max(0.0, timeout)):
            self._not_before = min(self._not_before, time.monotonic())  # one last attempt, now
            self._wakeup.notify_all()
            self._lock.release()
        if self.flush(max(0.0, deadline - time.monotonic())) and not close:
            return True
        if not self._lock.acquire(timeout=max(0.05, deadline - time.monotonic())):
            return False
        try:
            self._closed = self._closed or close
            leftovers = [item for queue in self._queues.values() for item in queue]
            for queue in self._queues.values():
                queue.clear()
            self._queued_bytes = dict.fromkeys(CATEGORIES, 0)
            if isinstance(self._in_flight, _Queued) and not self._in_flight.abandoned:
                self._in_flight.abandoned = True
                leftovers.append(self._in_flight)
            pending_reports, self._pending_reports = self._pending_reports, Counter()
            pending_reports.update(self._riding)  # its request may never finish
            self._riding = Counter()
            self._wakeup.notify_all()
        finally:
            self._lock.release()
        for item in leftovers:
            self._keep_or_count(item)
        with self._lock:
            pending_reports.update(self._pending_reports)  # the shutdown drops counted just now
            self._pending_reports = Counter()
            if self.spool is None:
                self._pending_reports = pending_reports  # nowhere to keep them but here
        if self.spool is not None:
            self.spool.save_reports(pending_reports)
        return not leftovers

    def _keep_or_count(self, item: _Queued) -> None:
        if self.spool is not None:
            if item.claimed is not None and self.spool.release(item.claimed):
                return
            if item.claimed is None and self.spool.put(item.body, item.category):
                return
        with self._lock:
            self._count_drop(reports.SHUTDOWN, item.category, item.spans, item.profiles)

    def stats(self) -> TransportStats:
        with self._lock:
            return TransportStats(
                destination=self.destination.name,
                submitted=Counter(self.submitted),
                delivered=Counter(self.delivered),
                dropped=Counter(self.dropped),
                requests=Counter(self.requests),
                queued=sum(len(q) for q in self._queues.values()),
                queued_bytes=Counter(self._queued_bytes),
                spooled=self.spool.pending() if self.spool is not None else 0,
                pending_reports=sum(self._pending_reports.values()),
                reported=self._reported,
            )
