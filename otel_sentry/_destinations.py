"""Where envelopes go: a Sentry DSN or a Spotlight sidecar over HTTP, or the local inbox on disk.

One ``send`` per envelope, called only from a transport's worker thread. An HTTP attempt is bounded as
a whole (connect, upload, status, headers, body), not per socket read: a server that answers one byte
per second defeats a per-read timeout (urllib3's, which sentry-sdk uses), so a watchdog cuts the socket
at the deadline. ``http.client`` is used directly because it exposes the socket to cut.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import math
import os
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import urllib3
from opentelemetry.instrumentation.utils import suppress_instrumentation

from ._redact import mask_url_secrets

try:
    import certifi
except ImportError:  # pragma: no cover - sentry-sdk depends on it
    certifi = None  # type: ignore[assignment]

# Everything the worker thread needs is imported here, never lazily from the worker: a fork() taken
# while the worker imports a module leaves that module's import lock held forever in the child, whose
# own worker then blocks on the same import (bench/faults.py found it). getaddrinfo() encodes the
# host name with the idna codec, imported on first use: load it now.
"localhost".encode("idna")

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_MAX_RESPONSE_BYTES = 1 << 20
ALL_CATEGORIES = "*"


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another attempt may succeed.

    ``limits`` are rate limits to honour (category -> monotonic deadline); ``retry_after`` is how long
    the server asked us to wait before the next attempt, if it said so.
    """

    def __init__(
        self,
        message: str,
        *,
        retry: bool,
        status: Optional[int] = None,
        limits: Optional[dict[str, float]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.limits = limits or {}
        self.retry_after = retry_after


@dataclass
class Accepted:
    """A 2xx answer; Sentry may still announce rate limits on it."""

    status: int = 200
    limits: dict[str, float] = field(default_factory=dict)


class Destination(Protocol):
    name: str
    #: Whether to attach client reports (only Sentry itself reads them).
    client_reports: bool

    def send(self, body: bytes, category: str) -> Accepted:
        """Deliver one serialized envelope, or raise :class:`DeliveryError`."""
        ...


def _suppressed() -> Any:
    # Our own HTTP requests must never be traced by an HTTP client instrumentation.
    return suppress_instrumentation()


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds, fractional too, or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = float(urllib3.util.Retry().parse_retry_after(value))
        except Exception:
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_rate_limits(headers: Any, status: int, now: Optional[float] = None) -> dict[str, float]:
    """Category -> monotonic deadline, from ``X-Sentry-Rate-Limits`` or, for a bare 429, Retry-After.

    Sentry's SDK spec: honour the header on any status (also 200), a fractional ``retry_after``, empty
    categories meaning all of them, the longest limit per category; a 429 without the header limits
    everything for ``Retry-After`` seconds (60 if absent). Written here rather than reusing sentry-sdk's
    ``_parse_rate_limits``, which calls ``int()`` on ``retry_after`` and so drops fractional limits.
    """
    now = time.monotonic() if now is None else now
    limits: dict[str, float] = {}
    header = headers.get("x-sentry-rate-limits")
    if header:
        for limit in header.split(","):
            fields = limit.strip().split(":")
            if len(fields) < 2:
                continue
            try:
                retry_after = float(fields[0])
            except ValueError:
                continue
            if not math.isfinite(retry_after):
                continue
            until = now + max(0.0, retry_after)
            for category in fields[1].split(";") if fields[1] else [ALL_CATEGORIES]:
                key = category.strip() or ALL_CATEGORIES
                limits[key] = max(limits.get(key, 0.0), until)
    elif status == 429:
        seconds = parse_retry_after(headers.get("retry-after"))
        limits[ALL_CATEGORIES] = now + (60.0 if seconds is None else seconds)
    return limits


def _ssl_context() -> ssl.SSLContext:
    # As sentry-sdk: an explicit bundle from the environment, else certifi's, else the system's.
    cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    if not cafile and certifi is not None:
        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile)


class _Watchdog:
    """Cuts a connection whose request outlives its deadline: a server dripping one byte a second
    never trips a per-read socket timeout. One parked thread per destination, armed per request (a
    ``threading.Timer`` per request started an OS thread for every envelope sent)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: Optional[tuple[float, Callable[[], None]]] = None
        self._fired = False
        self._thread: Optional[threading.Thread] = None

    def arm(self, seconds: float, cut: Callable[[], None]) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="otel_sentry.watchdog", daemon=True)
                self._thread.start()
            self._armed = (time.monotonic() + seconds, cut)
            self._fired = False
            self._cond.notify()

    def disarm(self) -> bool:
        """Stand down; True when the deadline had passed and the connection was cut."""
        with self._cond:
            self._armed = None
            return self._fired

    def _run(self) -> None:
        with self._cond:
            while True:
                if self._armed is None:
                    self._cond.wait()
                    continue
                deadline, cut = self._armed
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self._armed = None
                self._fired = True
                with contextlib.suppress(Exception):
                    cut()


class HttpDestination:
    """POSTs gzip-compressed envelopes to a Sentry DSN's envelope endpoint or a Spotlight sidecar."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        auth_header: Optional[str],
        timeout: float,
        client_reports: bool = False,
    ) -> None:
        self.name = name
        self.url = url
        self.client_reports = client_reports
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = {
            "Content-Type": "application/x-sentry-envelope",
            "Content-Encoding": "gzip",
            "Host": parts.netloc.rpartition("@")[2],
        }
        if auth_header:
            self._headers["X-Sentry-Auth"] = auth_header
        self._timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None
        self._watchdog = _Watchdog()

    @classmethod
    def for_dsn(cls, dsn: str, *, timeout: float) -> HttpDestination:
        from . import __version__
        from ._dsn import parse_dsn  # not sentry_sdk's Dsn: importing sentry_sdk slows start-up

        parsed = parse_dsn(dsn)
        return cls(
            parsed.envelope_url(),
            name="sentry",
            auth_header=parsed.auth_header(f"otel_sentry/{__version__}"),
            timeout=timeout,
            client_reports=True,
        )

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=_ssl_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def reset_after_fork(self) -> None:
        # The connection's socket is shared with the parent after fork(): forget it, never use it.
        # The watchdog's thread did not survive the fork, and its lock may have been held.
        self._conn = None
        self._watchdog = _Watchdog()

    @staticmethod
    def _cut(conn: http.client.HTTPConnection) -> None:
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def send(self, body: bytes, category: str) -> Accepted:
        payload = gzip.compress(body, compresslevel=6)
        conn = self._connection()
        self._watchdog.arm(self._timeout, lambda: self._cut(conn))
        try:
            with _suppressed():
                conn.request("POST", self._path, body=payload, headers=self._headers)
                response = conn.getresponse()
                response.read(_MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            fired = self._watchdog.disarm()
            self._close()
            timed_out = fired or isinstance(exc, socket.timeout)
            what = "timed out" if timed_out else f"{type(exc).__name__}: {mask_url_secrets(str(exc))}"
            raise DeliveryError(what, retry=True) from None
        finally:
            self._watchdog.disarm()
        if response.will_close or not response.isclosed():
            self._close()
        status = response.status
        limits = parse_rate_limits(response.headers, status)
        if 200 <= status < 300:
            return Accepted(status, limits)
        if status == 429:
            raise DeliveryError("rate limited (429)", retry=False, status=429, limits=limits)
        retry_after = parse_retry_after(response.headers.get("retry-after")) if status >= 500 else None
        raise DeliveryError(
            f"HTTP {status}",
            retry=status in _RETRY_STATUSES,
            status=status,
            limits=limits,
            retry_after=retry_after,
        )


class InboxDestination:
    """Writes envelopes to the local inbox: the embedded default when no DSN is configured."""

    client_reports = False

    def __init__(self, inbox: Any) -> None:
        self.name = "inbox"
        self._inbox = inbox

    def send(self, body: bytes, category: str) -> Accepted:
        try:
            self._inbox.write(body)
        except OSError as exc:
            raise DeliveryError(str(exc), retry=False) from None
        return Accepted()
