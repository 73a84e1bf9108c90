"""The seeds' /sentry-debug endpoint: off by default, captures or raises a test event, not traced."""

from __future__ import annotations

from tests.support import relay
from tests.support.capture_app import background_run, debug_route_run


def test_the_debug_route_is_off_unless_configured() -> None:
    run = background_run()
    assert run.responses["/sentry-debug"][0] == 404
    assert not [e for e in run.events if e["tags"].get("debug_event")]


def test_it_captures_a_test_event_and_returns_its_id() -> None:
    run = debug_route_run()
    status, event_id = run.responses["/ops/sentry-debug"]
    assert status == 200 and event_id
    (event,) = [e for e in run.events if e["event_id"] == event_id]
    assert event["tags"]["debug_event"] == "true"
    assert event["transaction"] == "/ops/sentry-debug"
    value = event["exception"]["values"][-1]
    assert value["type"] == "SentryDebugError"
    assert value["mechanism"] == {"type": "otel_sentry.debug_route", "handled": True}
    relay.assert_valid(event)


def test_raise_exception_true_raises_through_the_normal_error_path_once() -> None:
    run = debug_route_run()
    raised = [e for e in run.events if e["exception"]["values"][-1]["mechanism"]["handled"] is False]
    (event,) = raised
    assert event["tags"]["debug_event"] == "true"
    assert event["tags"]["http_status"] == "500"
    assert len(run.events) == 2, [e["event_id"] for e in run.events]


def test_the_debug_route_is_never_traced() -> None:
    run = debug_route_run()
    routes = {str(s["attributes"].get("http.route") or s["name"]) for s in run.spans if s["kind"] == 2}
    assert "/ok" in routes  # every request is sampled here...
    assert not [r for r in routes if "sentry-debug" in r]  # ...but the test route makes no span at all
    assert not [s for s in run.spans if "sentry_debug" in s["name"]]
