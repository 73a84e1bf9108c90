"""Delivery of envelopes to Sentry, Spotlight or the local inbox, off the request path.

sentry-sdk's ``HttpTransport`` is not reused as a whole: it keeps one 100-envelope queue shared by
errors and transactions, never retries a 5xx, and its queue is inherited by a forked child, which then
sends the parent's events again. This module keeps sentry-sdk's pieces (``Envelope`` serialization,
``Dsn`` auth headers, its rate-limit header parser) and adds what is missing: one bounded queue per
category (errors never wait behind transactions), a byte bound, retries with jittered backoff, a
per-category rate-limit window, fork safety, and a count of everything dropped, by reason.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import urllib3

from ._redact import mask_url_secrets

logger = logging.getLogger("otel_sentry")

ERROR = "error"
TRANSACTION = "transaction"
CATEGORIES = (ERROR, TRANSACTION)

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_MAX_ATTEMPTS = 3


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(
        self, message: str, *, retry: bool, status: int | None = None, limits: dict[str, float] | None = None
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.limits = limits or {}


class Destination(Protocol):
    name: str

    def send(self, body: bytes, category: str) -> dict[str, float]:
        """Deliver one serialized envelope; return rate limits to honour (category -> until)."""
        ...


def _suppressed() -> Any:
    # Our own HTTP requests must never be traced by an HTTP client instrumentation.
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def _rate_limits(headers: Any, status: int) -> dict[str, float]:
    """Category -> monotonic deadline, from X-Sentry-Rate-Limits or, for a bare 429, Retry-After.

    Parsed here rather than with sentry-sdk's ``_parse_rate_limits``, which drops any limit whose
    ``retry_after`` is fractional (it calls ``int()``), although Sentry sends floats.
    """
    now = time.monotonic()
    limits: dict[str, float] = {}
    header = headers.get("x-sentry-rate-limits")
    if header:
        for limit in header.split(","):
            fields = limit.strip().split(":")
            try:
                retry_after = float(fields[0])
            except ValueError:
                continue
            if len(fields) < 2 or retry_after != retry_after:  # NaN
                continue
            for category in fields[1].split(";") if fields[1] else ["*"]:
                key = category.strip() or "*"
                limits[key] = max(limits.get(key, 0.0), now + max(0.0, retry_after))
    elif status == 429:
        try:
            retry_after = float(headers.get("retry-after") or 60)
        except ValueError:
            retry_after = 60.0
        limits["*"] = now + retry_after
    return limits


class HttpDestination:
    """POSTs envelopes to a Sentry DSN's envelope endpoint or to a Spotlight sidecar."""

    def __init__(self, url: str, *, name: str, auth_header: str | None, timeout: float) -> None:
        self.name = name
        self.url = url
        self._headers = {"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip"}
        if auth_header:
            self._headers["X-Sentry-Auth"] = auth_header
        self._timeout = timeout
        self._pool: Optional[urllib3.PoolManager] = None

    @classmethod
    def for_dsn(cls, dsn: str, *, timeout: float) -> HttpDestination:
        from sentry_sdk.utils import Dsn

        from . import __version__

        auth = Dsn(dsn).to_auth(f"otel_sentry/{__version__}")
        return cls(auth.get_api_url(), name="sentry", auth_header=auth.to_header(), timeout=timeout)

    def _client(self) -> urllib3.PoolManager:
        if self._pool is None:
            self._pool = urllib3.PoolManager(
                num_pools=1, maxsize=1, retries=False, timeout=urllib3.Timeout(total=self._timeout)
            )
        return self._pool

    def reset_after_fork(self) -> None:
        # A pool's sockets are shared with the parent after fork(); never reuse them.
        self._pool = None

    def send(self, body: bytes, category: str) -> dict[str, float]:
        try:
            with _suppressed():
                response = self._client().request(
                    "POST", self.url, body=gzip.compress(body, compresslevel=6), headers=self._headers
                )
        except Exception as exc:
            raise DeliveryError(
                f"{self.name}: {type(exc).__name__}: {mask_url_secrets(str(exc))}", retry=True
            ) from None
        limits = _rate_limits(response.headers, response.status)
        if response.status == 429:
            raise DeliveryError(f"{self.name}: rate limited (429)", retry=False, status=429, limits=limits)
        if response.status >= 400:
            raise DeliveryError(
                f"{self.name}: HTTP {response.status}",
                retry=response.status in _RETRY_STATUSES,
                status=response.status,
                limits=limits,
            )
        return limits


class InboxDestination:
    """Writes envelopes to the local inbox: the embedded default when no DSN is configured."""

    def __init__(self, inbox: Any) -> None:
        self.name = "inbox"
        self._inbox = inbox

    def send(self, body: bytes, category: str) -> dict[str, float]:
        try:
            self._inbox.write(body)
        except OSError as exc:
            raise DeliveryError(f"inbox: {exc}", retry=False) from None
        return {}


@dataclass
class _Queued:
    body: bytes
    category: str


class Transport:
    """Bounded, non-blocking delivery with one worker thread per process."""

    def __init__(
        self,
        destination: Destination,
        *,
        max_events: int = 1000,
        max_bytes: int = 32 * 1024 * 1024,
        retry_delays: tuple[float, ...] = (0.5, 2.0),
    ) -> None:
        self.destination = destination
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._retry_delays = retry_delays
        self.dropped: Counter[tuple[str, str]] = Counter()
        self.delivered: Counter[str] = Counter()
        self._init_state()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._queues: dict[str, deque[_Queued]] = {category: deque() for category in CATEGORIES}
        self._queued_bytes: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        self._rate_limited: dict[str, float] = {}
        self._in_flight = 0
        self._closed = False
        self._thread: Optional[threading.Thread] = None

    def _after_fork(self) -> None:
        # The child gets a copy of the parent's queue; the parent delivers those, so the child starts
        # empty (no event is sent twice) with a fresh lock (the parent's may have been held).
        self._init_state()
        reset = getattr(self.destination, "reset_after_fork", None)
        if reset is not None:
            reset()

    def is_rate_limited(self, category: str) -> bool:
        now = time.monotonic()
        return max(self._rate_limited.get(category, 0.0), self._rate_limited.get("*", 0.0)) > now

    def submit(self, body: bytes, category: str) -> bool:
        """Queue one serialized envelope; never blocks on I/O. False (and counted) when dropped."""
        with self._lock:
            if self._closed:
                self.dropped[("shutdown", category)] += 1
                return False
            if self.is_rate_limited(category):
                self.dropped[("ratelimit_backoff", category)] += 1
                return False
            queue = self._queues[category]
            if len(queue) >= self._max_events or self._queued_bytes[category] + len(body) > self._max_bytes:
                self.dropped[("queue_overflow", category)] += 1
                return False
            queue.append(_Queued(body, category))
            self._queued_bytes[category] += len(body)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="otel_sentry.transport", daemon=True)
                self._thread.start()
            self._wakeup.notify()
        return True

    def _next(self) -> Optional[_Queued]:
        with self._lock:
            while True:
                for category in CATEGORIES:  # errors first
                    queue = self._queues[category]
                    if queue:
                        item = queue.popleft()
                        self._queued_bytes[category] -= len(item.body)
                        self._in_flight += 1
                        return item
                if self._closed:
                    return None
                self._wakeup.wait()

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            try:
                self._deliver(item)
            except Exception:  # a bug here must never kill delivery for the rest of the process
                logger.exception("otel_sentry: internal error while delivering an envelope")
                self.dropped[("internal_error", item.category)] += 1
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._wakeup.notify_all()

    def _deliver(self, item: _Queued) -> None:
        if self.is_rate_limited(item.category):
            self.dropped[("ratelimit_backoff", item.category)] += 1
            return
        for attempt in range(_MAX_ATTEMPTS):
            try:
                limits = self.destination.send(item.body, item.category)
            except DeliveryError as exc:
                self._merge_limits(exc.limits)
                if exc.status == 429 or not exc.retry or attempt == _MAX_ATTEMPTS - 1:
                    reason = "ratelimit_backoff" if exc.status == 429 else "send_error"
                    self.dropped[(reason, item.category)] += 1
                    logger.debug("otel_sentry: dropped %s envelope: %s", item.category, exc)
                    return
                delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
                time.sleep(delay * (0.5 + random.random()))
            else:
                self._merge_limits(limits)
                self.delivered[item.category] += 1
                return

    def _merge_limits(self, limits: dict[str, float]) -> None:
        for category, until in limits.items():
            # Keep the longest window per category, as Sentry's SDK spec asks.
            self._rate_limited[category] = max(self._rate_limited.get(category, 0.0), until)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is delivered or dropped; True if it all went."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(self._queues.values()) or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wakeup.wait(remaining)
        return True

    def shutdown(self, timeout: float) -> None:
        """Deliver what fits in the timeout; count the rest as dropped."""
        self.flush(timeout)
        with self._lock:
            self._closed = True
            for category, queue in self._queues.items():
                if queue:
                    self.dropped[("shutdown", category)] += len(queue)
                    queue.clear()
            self._wakeup.notify_all()
