"""Delivery to a real loopback Sentry ingest: rate limits, retries, 413, client reports, the spool.

Every test drives the real transport over real HTTP on 127.0.0.1; the ingest's ``respond_with``
programs the failure. Backoffs are shortened so the suite stays fast; the figures over 30 s outages
are in bench/faults.py.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sentry_sdk.envelope import Envelope

from otel_sentry._destinations import parse_rate_limits
from otel_sentry._spool import Spool
from otel_sentry._transport import ERROR, TRANSACTION, HttpDestination, Transport
from otel_sentry.testing import SentryIngest


def envelope(category: str = ERROR, note: str = "") -> bytes:
    event_id = uuid.uuid4().hex
    env = Envelope(headers={"event_id": event_id})
    if category == TRANSACTION:
        now = time.time()
        env.add_transaction(
            {
                "event_id": event_id,
                "type": "transaction",
                "transaction": note or "GET /",
                "start_timestamp": now - 0.01,
                "timestamp": now,
                "contexts": {"trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16]}},
                "spans": [],
            }
        )
    else:
        env.add_event({"event_id": event_id, "level": "error", "message": note or "boom"})
    return env.serialize()


def transport(ingest_dsn: str, **kw: Any) -> Transport:
    options: dict[str, Any] = {"backoff_base": 0.05, "backoff_cap": 0.2, "report_interval": 0.2}
    options.update(kw)
    return Transport(HttpDestination.for_dsn(ingest_dsn, timeout=1.0), **options)


def kinds(ingest: SentryIngest) -> list[tuple[int, list[str]]]:
    """(status answered, item types) per request, in arrival order."""
    return [(env.status, env.item_types) for env in ingest.envelopes()]


def reported(ingest: SentryIngest) -> Counter[tuple[str, str]]:
    """Everything the client reports that Sentry accepted say was discarded."""
    total: Counter[tuple[str, str]] = Counter()
    for report in ingest.items("client_report"):
        for row in report["discarded_events"]:
            total[(row["reason"], row["category"])] += row["quantity"]
    return total


def accounted(t: Transport) -> None:
    """The identity the issue asks for: delivered + dropped by reason == submitted, per category."""
    stats = t.stats()
    assert stats.queued == 0 and stats.spooled == 0
    for category in (ERROR, TRANSACTION):
        dropped = sum(n for (_reason, cat), n in stats.dropped.items() if cat == category)
        assert stats.delivered[category] + dropped == stats.submitted[category], stats


# -- rate-limit parsing: Sentry's SDK spec, table-driven ------------------------------------------
NOW = 1000.0


@pytest.mark.parametrize(
    ("headers", "status", "expected"),
    [
        ({"x-sentry-rate-limits": "60:error:organization"}, 429, {"error": 1060.0}),
        ({"x-sentry-rate-limits": "2.5:transaction:key"}, 429, {"transaction": 1002.5}),
        (
            {"x-sentry-rate-limits": "0.25:error;transaction:project"},
            429,
            {"error": 1000.25, "transaction": 1000.25},
        ),
        ({"x-sentry-rate-limits": "10::organization"}, 429, {"*": 1010.0}),
        ({"x-sentry-rate-limits": "10:error:key, 30:error:org, 5:error:project"}, 429, {"error": 1030.0}),
        ({"x-sentry-rate-limits": "7:error:key:quota_exceeded:ns"}, 200, {"error": 1007.0}),
        ({"x-sentry-rate-limits": "abc:error:key, nan:error:key, inf:error, 3"}, 429, {}),
        ({"retry-after": "1.5"}, 429, {"*": 1001.5}),
        ({}, 429, {"*": 1060.0}),
        ({"retry-after": "soon"}, 429, {"*": 1060.0}),
        ({"retry-after": "3", "x-sentry-rate-limits": "9:transaction:key"}, 429, {"transaction": 1009.0}),
        ({}, 200, {}),
        ({"retry-after": "3"}, 503, {}),
    ],
)
def test_rate_limit_forms(headers: dict[str, str], status: int, expected: dict[str, float]) -> None:
    assert parse_rate_limits(headers, status, now=NOW) == pytest.approx(expected)


# -- delivery against the loopback ingest -------------------------------------------------------
def test_a_rate_limited_category_gets_no_request_during_its_window(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn())
    sentry_ingest.respond_with(429, {"X-Sentry-Rate-Limits": "1.5:transaction:key"})
    t.submit(envelope(TRANSACTION), TRANSACTION)
    assert t.flush(5)
    window_end = time.monotonic() + 1.2
    for _ in range(3):
        t.submit(envelope(TRANSACTION), TRANSACTION)  # inside the window: dropped before any request
        t.submit(envelope(ERROR), ERROR)  # another category: delivered
    assert t.flush(5) and time.monotonic() < window_end
    assert kinds(sentry_ingest)[0] == (429, ["transaction"])
    assert all("transaction" not in types for _status, types in kinds(sentry_ingest)[1:])
    assert len(sentry_ingest.events()) == 3
    time.sleep(max(0.0, window_end + 0.4 - time.monotonic()))
    t.submit(envelope(TRANSACTION), TRANSACTION)  # the window is over
    assert t.flush(5)
    assert len(sentry_ingest.transactions()) == 1
    assert t.dropped == Counter({("rate_limited", TRANSACTION): 1, ("ratelimit_backoff", TRANSACTION): 3})
    assert t.submit(envelope(ERROR), ERROR) and t.flush(5)
    # The 429'd one is Relay's to count; the three we held back are ours, reported on a later envelope.
    assert reported(sentry_ingest) == Counter({("ratelimit_backoff", TRANSACTION): 3})
    accounted(t)


def test_limits_announced_on_a_200_with_a_fractional_retry_after_are_honoured(
    sentry_ingest: SentryIngest,
) -> None:
    t = transport(sentry_ingest.dsn())
    sentry_ingest.respond_with(200, {"X-Sentry-Rate-Limits": "0.8:error:key"})
    assert t.submit(envelope(), ERROR) and t.flush(5)
    assert t.submit(envelope(), ERROR) is False  # sentry-sdk's int("0.8") fails: it would send this
    time.sleep(0.9)
    assert t.submit(envelope(), ERROR) and t.flush(5)
    assert [types for _, types in kinds(sentry_ingest) if "event" in types] == [["event"], ["event"]]
    assert t.dropped == Counter({("ratelimit_backoff", ERROR): 1})


def test_a_bare_429_limits_every_category_for_retry_after(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn())
    sentry_ingest.respond_with(429, {"Retry-After": "0.7"})
    t.submit(envelope(), ERROR)
    assert t.flush(5)
    assert not t.submit(envelope(TRANSACTION), TRANSACTION) and not t.submit(envelope(), ERROR)
    time.sleep(0.8)
    assert t.submit(envelope(), ERROR) and t.flush(5)
    assert [status for status, types in kinds(sentry_ingest) if "event" in types] == [429, 200]


def test_413_is_never_retried_and_is_reported(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn())
    sentry_ingest.respond_with(413, body="too large")
    t.submit(envelope(), ERROR)
    assert t.flush(5)
    # Not retried; flush() sends the pending report on its own.
    assert kinds(sentry_ingest) == [(413, ["event"]), (200, ["client_report"])]
    assert t.dropped == Counter({("send_error", ERROR): 1})
    assert reported(sentry_ingest) == Counter({("send_error", ERROR): 1})
    accounted(t)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_backoff_until_delivered(sentry_ingest: SentryIngest, status: int) -> None:
    t = transport(sentry_ingest.dsn())
    sentry_ingest.respond_with(status, times=2)
    t.submit(envelope(), ERROR)
    assert t.flush(5)
    assert [s for s, _ in kinds(sentry_ingest)] == [status, status, 200]
    assert t.dropped == Counter()
    accounted(t)


def test_retry_after_on_a_503_is_the_backoff(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn())
    sentry_ingest.respond_with(503, {"Retry-After": "0.6"})
    started = time.monotonic()
    t.submit(envelope(), ERROR)
    assert t.flush(5)
    assert time.monotonic() - started >= 0.6
    assert [s for s, _ in kinds(sentry_ingest)] == [503, 200]


def test_errors_are_not_held_behind_a_retrying_transaction(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn(), backoff_base=0.3, backoff_cap=0.3)
    sentry_ingest.respond_with(503)
    t.submit(envelope(TRANSACTION), TRANSACTION)
    assert sentry_ingest.wait_for(lambda i: len(i.envelopes()) == 1, 5)
    t.submit(envelope(ERROR), ERROR)  # arrives while the transaction waits for its retry
    assert t.flush(5)
    assert kinds(sentry_ingest) == [(503, ["transaction"]), (200, ["event"]), (200, ["transaction"])]


def test_an_outage_keeps_everything_but_a_poison_envelope_is_dropped(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn(), backoff_base=0.02, backoff_cap=0.05)
    # Outage: everything fails for a while; nothing may be dropped for its attempts alone.
    sentry_ingest.respond_with(500, times=12)
    for n in range(5):
        t.submit(envelope(note=f"outage-{n}"), ERROR)
    assert t.flush(10)
    assert len(sentry_ingest.events()) == 5 and t.dropped == Counter()
    # One envelope the server keeps refusing while it accepts another: dropped after 3 attempts.
    sentry_ingest.clear()
    sentry_ingest.respond_with(500, times=3)
    sentry_ingest.respond_with(200, times=1)
    sentry_ingest.respond_with(500, times=1)
    t.submit(envelope(note="poison"), ERROR)
    t.submit(envelope(note="fine"), ERROR)
    assert t.flush(10)
    assert [s for s, _ in kinds(sentry_ingest)] == [500, 500, 500, 200, 500, 200]
    assert kinds(sentry_ingest)[-1] == (200, ["client_report"])
    assert t.dropped == Counter({("send_error", ERROR): 1})
    accounted(t)


def hold(t: Transport, ingest: SentryIngest, seconds: float = 1.0) -> None:
    """Put the transport in a backoff of ``seconds`` with one envelope queued, nothing in flight."""
    ingest.respond_with(503, {"Retry-After": str(seconds)}, times=None)
    t.submit(envelope(note="probe"), ERROR)
    assert ingest.wait_for(lambda i: len(i.envelopes()) == 1, 5)
    deadline = time.monotonic() + 2
    while t.stats().queued != 1 and time.monotonic() < deadline:
        time.sleep(0.01)


def test_queues_are_bounded_in_count_and_bytes_and_overflow_is_reported(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn(), max_events=5, max_bytes=10_000)
    hold(t, sentry_ingest)
    big = envelope(note="x" * 4000)
    results = [t.submit(big, ERROR) for _ in range(3)]  # the probe and two of these fit in 10 kB
    results += [t.submit(envelope(TRANSACTION), TRANSACTION) for _ in range(7)]  # five fit
    assert results.count(False) == 3
    assert t.stats().queued_bytes[ERROR] <= 10_000
    sentry_ingest.reset_responses()
    assert t.flush(10)
    assert t.dropped == Counter({("queue_overflow", ERROR): 1, ("queue_overflow", TRANSACTION): 2})
    assert reported(sentry_ingest) == Counter(
        {("queue_overflow", ERROR): 1, ("queue_overflow", TRANSACTION): 2}
    )
    accounted(t)


def test_client_reports_survive_the_outage_that_caused_them(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn(), max_events=2)
    hold(t, sentry_ingest, 0.5)
    for _ in range(5):
        t.submit(envelope(), ERROR)
    assert not t.flush(0.8)  # still down: the report rides on nothing that got through
    sentry_ingest.reset_responses()
    assert t.flush(5)
    assert len(sentry_ingest.events()) == 2
    assert reported(sentry_ingest) == Counter({("queue_overflow", ERROR): 4})
    accounted(t)


def test_a_lone_report_goes_out_when_nothing_else_carries_it(sentry_ingest: SentryIngest) -> None:
    t = transport(sentry_ingest.dsn(), report_interval=0.3)
    sentry_ingest.respond_with(200, {"X-Sentry-Rate-Limits": "0.2:error:key"})
    t.submit(envelope(), ERROR)
    assert t.flush(5)
    t.submit(envelope(), ERROR)  # dropped: inside the window
    assert sentry_ingest.wait_for(lambda i: bool(reported(i)), 5)
    assert kinds(sentry_ingest)[-1] == (200, ["client_report"])
    assert reported(sentry_ingest) == Counter({("ratelimit_backoff", ERROR): 1})


# -- the spool ----------------------------------------------------------------------------------
def test_the_spool_keeps_what_memory_cannot_and_delivers_it_after_the_outage(
    sentry_ingest: SentryIngest, tmp_path: Path
) -> None:
    spool = Spool(tmp_path, sentry_ingest.dsn(), max_bytes=1_000_000)
    t = transport(sentry_ingest.dsn(), max_events=2, spool=spool)
    sentry_ingest.respond_with(503, times=None)
    for n in range(10):
        assert t.submit(envelope(note=f"e{n}"), ERROR)
    assert spool.pending() >= 7
    sentry_ingest.reset_responses()
    assert t.flush(10)
    assert sorted(e["message"] for e in sentry_ingest.events()) == sorted(f"e{n}" for n in range(10))
    assert t.dropped == Counter() and list(spool.directory.iterdir()) == []


def test_a_restart_loses_nothing_that_fit_in_the_spool(sentry_ingest: SentryIngest, tmp_path: Path) -> None:
    dsn = sentry_ingest.dsn()
    first = transport(dsn, max_events=3, spool=Spool(tmp_path, dsn, max_bytes=1_000_000))
    sentry_ingest.respond_with(503, times=None)
    for n in range(6):
        first.submit(envelope(note=f"r{n}"), ERROR)
    first.submit(envelope(TRANSACTION), TRANSACTION)
    first.shutdown(0.3)  # the backend is still down: everything goes to disk, nothing is dropped
    assert first.dropped == Counter()
    sentry_ingest.reset_responses()
    second = transport(dsn, spool=Spool(tmp_path, dsn, max_bytes=1_000_000))  # "after the restart"
    assert second.flush(10)
    assert sorted(e["message"] for e in sentry_ingest.events()) == sorted(f"r{n}" for n in range(6))
    assert len(sentry_ingest.transactions()) == 1


def test_a_spool_over_its_bound_counts_the_overflow(sentry_ingest: SentryIngest, tmp_path: Path) -> None:
    dsn = sentry_ingest.dsn()
    body = envelope(note="y" * 1000)
    spool = Spool(tmp_path, dsn, max_bytes=3 * len(body) + 10)
    t = transport(dsn, max_events=1, spool=spool)
    hold(t, sentry_ingest)  # memory (one envelope) is full
    results = [t.submit(body, ERROR) for _ in range(8)]
    assert results.count(True) == 3 and spool.pending() == 3
    assert t.dropped == Counter({("queue_overflow", ERROR): 5})
    t.shutdown(0.2)
    # The probe still in memory at shutdown finds no room on disk either: counted too.
    assert t.dropped == Counter({("queue_overflow", ERROR): 5, ("shutdown", ERROR): 1})
    assert spool.pending() == 3


def test_client_reports_survive_a_restart_through_the_spool(
    sentry_ingest: SentryIngest, tmp_path: Path
) -> None:
    dsn = sentry_ingest.dsn()
    first = transport(dsn, max_events=1, spool=Spool(tmp_path, dsn, max_bytes=1))  # nothing fits on disk
    sentry_ingest.respond_with(503, times=None)
    for _ in range(4):
        first.submit(envelope(), ERROR)
    first.shutdown(0.2)
    lost = sum(first.dropped.values())
    assert lost == 4
    sentry_ingest.reset_responses()
    second = transport(dsn, spool=Spool(tmp_path, dsn, max_bytes=1_000_000))
    assert second.flush(5)
    assert sum(reported(sentry_ingest).values()) == lost


def test_two_processes_sharing_a_spool_send_each_envelope_once(tmp_path: Path) -> None:
    a = Spool(tmp_path, "http://example/api/1/envelope/", max_bytes=1_000_000)
    for n in range(20):
        assert a.put(f"envelope {n}".encode(), ERROR)
    b = Spool(tmp_path, "http://example/api/1/envelope/", max_bytes=1_000_000)
    taken: list[bytes] = []
    while True:
        got = [s.claim(ERROR) for s in (a, b)]
        if got == [None, None]:
            break
        taken += [body for item in got if item is not None for body in [item[1]]]
    assert sorted(taken) == sorted(f"envelope {n}".encode() for n in range(20))
