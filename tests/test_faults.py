"""Network faults no real Sentry produces on demand: a server that hangs, answers one byte per second,
refuses connections, or resets them. A TCP fault proxy (tests/support/faults.py) sits in front of the
loopback ingest; the real transport delivers through it. Short versions of bench/faults.py, which
measures the same over 30 s outages with an app under load.
"""

from __future__ import annotations

import time

import pytest

from otel_sentry._transport import ERROR, TRANSACTION, HttpDestination, Transport
from otel_sentry.testing import SentryIngest
from tests.support.faults import FaultProxy
from tests.test_transport import accounted, envelope


@pytest.mark.parametrize("mode", ["hang", "trickle", "refuse", "reset"])
def test_a_fault_never_blocks_the_caller_and_loses_nothing_once_it_ends(
    sentry_ingest: SentryIngest, mode: str
) -> None:
    with FaultProxy(sentry_ingest.port, mode) as proxy:
        t = Transport(HttpDestination.for_dsn(proxy.dsn(), timeout=0.5), backoff_base=0.05, backoff_cap=0.2)
        slowest = 0.0
        for n in range(20):
            started = time.perf_counter()
            category = ERROR if n % 2 else TRANSACTION
            assert t.submit(envelope(category, note=f"{mode}-{n}"), category)
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 0.05, slowest  # queued, never sent from the caller's thread
        started = time.monotonic()
        assert t.flush(0.5) is False  # nothing can get through...
        assert time.monotonic() - started < 1.5  # ...and flush still returns within its timeout
        proxy.set_mode("pass")
        assert t.flush(10)
    assert len(sentry_ingest.events()) == 10 and len(sentry_ingest.transactions()) == 10
    assert t.dropped == {}
    accounted(t)


def test_a_server_trickling_its_answer_is_cut_at_the_request_timeout(sentry_ingest: SentryIngest) -> None:
    """A per-read timeout never fires when a byte arrives every second; the whole attempt is bounded."""
    with FaultProxy(sentry_ingest.port, "trickle") as proxy:
        t = Transport(HttpDestination.for_dsn(proxy.dsn(), timeout=0.4), backoff_base=5.0, backoff_cap=5.0)
        started = time.monotonic()
        t.submit(envelope(), ERROR)
        while t.stats().requests[ERROR] < 1 or t._in_flight is not None:
            time.sleep(0.02)
            assert time.monotonic() - started < 3, "the attempt was not cut"
        assert t.stats().queued == 1  # waiting for its retry, not lost
        t.shutdown(0.1)
    assert t.dropped == {("shutdown", ERROR): 1}
