"""Release health: one session per HTTP request, sent as per-minute aggregates equal to what was sent."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sentry_relay.processing import parse_release

from otel_sentry import _shutdown, capture_error
from otel_sentry._sessions import SessionAggregator
from otel_sentry._starlette import StarletteCaptureInstrumentor
from otel_sentry.testing import SentryIngest
from tests.support.runtime import sentry_runtime

RELEASE, ENVIRONMENT = "gateway@2.1.0+abc123", "staging"


@pytest.fixture
def capture_hooks() -> Iterator[None]:
    # TestClient runs the lifespan, whose shutdown drains delivery within the process's shutdown
    # budget: start it afresh (an earlier test of the session may have used it up).
    _shutdown._reset_budget()
    instrumentor = StarletteCaptureInstrumentor()
    already = instrumentor.is_instrumented_by_opentelemetry
    if not already:
        instrumentor.instrument()
    yield
    if not already:
        instrumentor.uninstrument()


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/captured")
    async def captured() -> dict[str, bool]:
        try:
            raise ConnectionError("cache down")
        except ConnectionError as e:
            capture_error(e, context_type="cache")  # handled: the request still succeeds
        return {"ok": True}

    @app.get("/unhandled")
    async def unhandled() -> dict[str, bool]:
        raise RuntimeError("boom")

    @app.get("/http503")
    async def http503() -> dict[str, bool]:
        try:
            raise TimeoutError("provider")
        except TimeoutError as e:
            raise HTTPException(503, "unavailable") from e

    @app.get("/client-error")
    async def client_error() -> dict[str, bool]:
        raise HTTPException(404, "nope")

    return app


def _totals(ingest: SentryIngest) -> tuple[Counter[str], list[dict[str, Any]]]:
    totals: Counter[str] = Counter()
    items = ingest.items("sessions")
    for item in items:
        for aggregate in item["aggregates"]:
            totals.update({k: v for k, v in aggregate.items() if k != "started"})
    return totals, items


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_aggregates_equal_the_requests_sent(
    sentry_ingest: SentryIngest, capture_hooks: None, seed: int
) -> None:
    rng = random.Random(seed)
    paths = ["/ok", "/captured", "/unhandled", "/http503", "/client-error"]
    plan = [rng.choice(paths) for _ in range(rng.randint(20, 60))]
    with sentry_runtime(sentry_ingest, release=RELEASE, environment=ENVIRONMENT) as runtime:
        with TestClient(build_app(), raise_server_exceptions=False) as client:
            for path in plan:
                client.get(path)
        assert runtime.flush(5)
        assert sentry_ingest.wait_for(lambda i: bool(i.items("sessions")), 5)
        events = sentry_ingest.events()
    # The session status follows the event each request produced, as sentry-sdk's does: a request
    # with an unhandled exception (mechanism.handled false) crashed, one with handled errors errored.
    handled_of = {
        e["transaction"]: all(v["mechanism"]["handled"] for v in e["exception"]["values"]) for e in events
    }
    expected: Counter[str] = Counter()
    for path in plan:
        if path not in handled_of:
            expected["exited"] += 1
        else:
            expected["errored" if handled_of[path] else "crashed"] += 1
    assert handled_of.get("/captured", True) is True and handled_of.get("/unhandled", False) is False
    totals, items = _totals(sentry_ingest)
    assert totals == expected and sum(totals.values()) == len(plan)
    for item in items:
        assert item["attrs"] == {"release": RELEASE, "environment": ENVIRONMENT}
        assert sorted(a["started"] for a in item["aggregates"]) == [a["started"] for a in item["aggregates"]]
    parse_release(RELEASE)  # Relay drops sessions of a release it cannot parse


@pytest.mark.parametrize(
    "settings", [{"release": RELEASE, "auto_session_tracking": False}, {"release": None}]
)
def test_off_without_a_release_or_when_switched_off(
    sentry_ingest: SentryIngest, capture_hooks: None, settings: dict[str, Any]
) -> None:
    with sentry_runtime(sentry_ingest, **settings) as runtime:
        assert runtime.sessions is None
        with TestClient(build_app(), raise_server_exceptions=False) as client:
            client.get("/ok")
            client.get("/unhandled")
        assert runtime.flush(5)
        assert sentry_ingest.wait_for(lambda i: len(i.events()) >= 1, 5)
    assert sentry_ingest.items("sessions") == []


def test_minute_buckets_flush_when_a_new_minute_starts_and_at_shutdown(sentry_ingest: SentryIngest) -> None:
    with sentry_runtime(sentry_ingest, release=RELEASE) as runtime:
        sessions = runtime.sessions
        assert isinstance(sessions, SessionAggregator)
        base = 1_800_000_000.0  # a minute boundary
        sessions.record("exited", now=base + 1)
        sessions.record("errored", now=base + 59)
        assert sentry_ingest.items("sessions") == [] and sum(sessions.pending()[int(base)].values()) == 2
        sessions.record("crashed", now=base + 61)  # first request of the next minute: flush both
        assert sessions.pending() == {}
        sessions.record("exited", now=base + 62)
        runtime.shutdown(5)  # the rest goes out at shutdown
        sessions.record("exited", now=base + 63)  # after shutdown: not counted
    assert sentry_ingest.wait_for(lambda i: len(i.items("sessions")) >= 2, 5)
    first, second = sentry_ingest.items("sessions")
    assert first["aggregates"] == [
        {"started": "2027-01-15T08:00:00.000000Z", "exited": 1, "errored": 1},
        {"started": "2027-01-15T08:01:00.000000Z", "crashed": 1},
    ]
    assert second["aggregates"] == [{"started": "2027-01-15T08:01:00.000000Z", "exited": 1}]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_send_the_parents_sessions(sentry_ingest: SentryIngest) -> None:
    with sentry_runtime(sentry_ingest, release=RELEASE) as runtime:
        sessions = runtime.sessions
        assert sessions is not None
        sessions.record("exited")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, str(sum(sum(b.values()) for b in sessions.pending().values())).encode())
            os._exit(0)
        os.close(write)
        assert os.read(read, 16) == b"0"
        os.close(read)
        os.waitpid(pid, 0)
        assert sum(sum(b.values()) for b in sessions.pending().values()) == 1
