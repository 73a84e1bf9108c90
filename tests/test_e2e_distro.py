"""End to end: an unchanged FastAPI app under ``opentelemetry-instrument``, exporting ``otlp,sentry``.

The app runs in a subprocess on 127.0.0.1, exactly as a user runs it; the Sentry side is a loopback
ingest that stores the envelopes it receives, the OTLP side a loopback receiver that decodes protobuf.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support import relay
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"

# (method, path, body) -> what must become an issue: (route template, outer type, inner types, status)
ISSUES = {
    ("GET", "/unhandled/7"): ("/unhandled/{item_id}", "ZeroDivisionError", [], 500),
    ("GET", "/sync-unhandled"): ("/sync-unhandled", "KeyError", [], 500),
    ("POST", "/v1/chat/completions"): ("/v1/chat/completions", "HTTPException", ["ConnectionError"], 500),
    ("GET", "/provider-down"): ("/provider-down", "ProviderError", ["ConnectionError"], 503),
    ("GET", "/http-503"): ("/http-503", "HTTPException", [], 503),
    ("GET", "/nested-span"): ("/nested-span", "RuntimeError", [], 500),
}
NOT_ISSUES = {
    ("GET", "/not-found"): 404,
    ("GET", "/unauthorized"): 401,
    ("POST", "/items"): 422,
    ("GET", "/ok/1"): 200,
    ("GET", "/health"): 200,
}


def distro_env(ingest: SentryIngest, receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp,sentry",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "errors-app",
        "SENTRY_DSN": ingest.dsn(),
        "SENTRY_ENVIRONMENT": "e2e",
        "SENTRY_RELEASE": "errors-app@1.2.3",
        "OTEL_SENTRY_SERVER_NAME": "e2e-host",
        # These tests follow every request; sampling has its own (tests/test_sampler.py).
        "OTEL_TRACES_SAMPLER_ARG": "*=1",
    }
    env.update(extra)
    return env


def exercise(app: AppProcess) -> None:
    # uvicorn closes a keep-alive connection after an unhandled exception; use one per request.
    close = {"Connection": "close"}
    for (method, path), (_route, _type, _inner, status) in ISSUES.items():
        assert app.client.request(method, path, headers=close).status_code == status, path
    for (method, path), status in NOT_ISSUES.items():
        kwargs: dict[str, Any] = {"json": {"nope": 1}} if path == "/items" else {}
        assert app.client.request(method, path, headers=close, **kwargs).status_code == status, path


def server_spans(receiver: OtlpReceiver) -> list[dict[str, Any]]:
    return [s for s in receiver.spans() if s["kind"] == 2]  # SpanKind.SERVER in OTLP


@pytest.fixture(scope="module")
def run() -> Any:
    """One app run shared by the assertions below (starting an instrumented app costs ~2 s)."""
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        with AppProcess(
            "errors_app", cwd=APPS, env=distro_env(ingest, receiver), ready_path="/health"
        ) as app:
            exercise(app)
            assert app.stop() == 0, app.output()
            output = app.output()
        assert receiver.wait_for(lambda r: len(server_spans(r)) >= len(ISSUES) + len(NOT_ISSUES) + 1, 10)
        yield ingest, receiver, output


def test_every_server_error_becomes_exactly_one_issue(run: Any) -> None:
    ingest, _receiver, output = run
    events = ingest.events()
    by_route = Counter(e["transaction"] for e in events)
    assert by_route == Counter(route for route, *_ in ISSUES.values()), output
    for route, outer, inner, status in ISSUES.values():
        (event,) = [e for e in events if e["transaction"] == route]
        values = event["exception"]["values"]
        assert [v["type"] for v in values] == [*inner, outer]
        # as sentry-sdk reports them: answered by an exception handler (HTTPException 5xx, the app's
        # handler for ProviderError) is handled; what nothing handled is not
        handled = outer in ("HTTPException", "ProviderError")
        assert all(v["mechanism"]["handled"] is handled for v in values)
        assert event["tags"]["http_status"] == str(status)
        assert event["tags"]["endpoint"] == route
        assert event["contexts"]["response"]["status_code"] == status
        assert event["contexts"]["trace"]["op"] == "http.server"
        assert event["contexts"]["trace"]["status"] == {500: "internal_error", 503: "unavailable"}[status]
        assert event["transaction_info"] == {"source": "route"}
        assert event["release"] == "errors-app@1.2.3"
        assert event["environment"] == "e2e"
        assert event["server_name"] == "e2e-host"
        assert event["sdk"]["name"] == "otel_sentry.python"
        assert event["request"]["method"] in ("GET", "POST")
        assert event["request"]["url"].startswith("http://127.0.0.1:")


def test_chained_cause_keeps_its_own_frames(run: Any) -> None:
    ingest, _receiver, _output = run
    (event,) = [e for e in ingest.events() if e["transaction"] == "/v1/chat/completions"]
    cause, outer = event["exception"]["values"]
    cause_functions = [f["function"] for f in cause["stacktrace"]["frames"]]
    assert cause_functions[-2:] == ["chat", "call_provider"]
    in_app = [f for f in outer["stacktrace"]["frames"] if f.get("in_app")]
    assert in_app and in_app[-1]["function"] == "chat"
    assert in_app[-1]["context_line"].strip().startswith("raise HTTPException(status_code=500")


def test_events_carry_the_otel_trace_of_their_request(run: Any) -> None:
    ingest, receiver, _output = run
    spans = {s["span_id"]: s for s in server_spans(receiver)}
    for event in ingest.events():
        trace = event["contexts"]["trace"]
        span = spans[trace["span_id"]]
        assert span["trace_id"] == trace["trace_id"]
        assert span["attributes"]["http.route"] == event["transaction"]


def test_handled_5xx_exceptions_are_recorded_on_the_otlp_span_too(run: Any) -> None:
    _ingest, receiver, _output = run
    for route in ("/provider-down", "/http-503", "/v1/chat/completions"):
        (span,) = [s for s in server_spans(receiver) if s["attributes"].get("http.route") == route]
        assert span["status"]["code"] == 2  # ERROR
        types = [e["attributes"].get("exception.type") for e in span["events"] if e["name"] == "exception"]
        assert types, route


def test_an_exception_recorded_on_several_spans_is_one_event(run: Any) -> None:
    ingest, receiver, _output = run
    (event,) = [e for e in ingest.events() if e["transaction"] == "/nested-span"]
    trace_id = event["contexts"]["trace"]["trace_id"]
    recorded_on = [
        s["name"]
        for s in receiver.spans()
        if s["trace_id"] == trace_id and any(e["name"] == "exception" for e in s["events"])
    ]
    assert "charge-card" in recorded_on and len(recorded_on) >= 2


def test_4xx_and_validation_errors_are_not_issues(run: Any) -> None:
    ingest, _receiver, _output = run
    routes = {e["transaction"] for e in ingest.events()}
    assert not routes & {"/not-found", "/unauthorized", "/items", "/ok/{item_id}", "/health"}


def test_sampled_traces_become_transactions_side_by_side(run: Any) -> None:
    ingest, receiver, _output = run
    transactions = ingest.transactions()
    server_trace_ids = {s["trace_id"] for s in server_spans(receiver)}
    assert {t["contexts"]["trace"]["trace_id"] for t in transactions} == server_trace_ids
    assert len(transactions) == len(server_trace_ids)


def test_asgi_send_and_receive_spans_are_left_out_by_default(run: Any) -> None:
    _ingest, receiver, _output = run
    assert receiver.spans()
    names = {s["name"] for s in receiver.spans()}
    assert not [n for n in names if n.endswith((" http send", " http receive"))], names


def test_asgi_send_and_receive_spans_come_back_when_asked_for() -> None:
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = distro_env(ingest, receiver, OTEL_SENTRY_ASGI_SEND_RECEIVE_SPANS="true")
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            assert app.client.get("/ok/1").status_code == 200
            assert app.stop() == 0, app.output()
        assert receiver.wait_for(lambda r: any(s["name"].endswith(" http send") for s in r.spans()), 10)


def test_every_envelope_passes_relay_normalization(run: Any) -> None:
    ingest, _receiver, _output = run
    payloads = ingest.events() + ingest.transactions()
    assert payloads
    for payload in payloads:
        relay.assert_valid(payload)


def test_envelopes_are_authenticated_and_carry_a_sampling_context(run: Any) -> None:
    ingest, _receiver, _output = run
    for envelope in ingest.envelopes():
        assert envelope.auth.get("sentry_key") == "public"
        if not {"event", "transaction"} & set(envelope.item_types):
            continue  # release-health sessions belong to no trace (sentry-sdk sends them without one)
        trace = envelope.headers["trace"]
        assert trace["public_key"] == "public"
        assert trace["release"] == "errors-app@1.2.3"
        assert len(trace["trace_id"]) == 32


def test_an_app_with_its_own_sentry_sdk_init_still_gets_one_event_per_error() -> None:
    with SentryIngest() as ours, SentryIngest() as apps_own, OtlpReceiver() as receiver:
        env = distro_env(ours, receiver, APP_SENTRY_SDK_DSN=apps_own.dsn())
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            exercise(app)
            assert app.get("/sdk-capture", headers={"Connection": "close"}).status_code == 500
            assert app.stop() == 0, app.output()
        routes = Counter(e["transaction"] for e in ours.events())
        expected = Counter(route for route, *_ in ISSUES.values())
        expected["/sdk-capture"] = 1
        assert routes == expected
        (sdk_event,) = [e for e in ours.events() if e["transaction"] == "/sdk-capture"]
        assert "ConnectionError" in [v["type"] for v in sdk_event["exception"]["values"]]
        # sentry-sdk's own pipeline sent neither a duplicate error nor a second set of transactions;
        # its log-message events (no exception attached) still go where the app sends them.
        assert [e for e in apps_own.events() if "exception" in e] == []
        assert apps_own.transactions() == []


FRAME_KEYS = (
    "module",
    "function",
    "filename",
    "abs_path",
    "lineno",
    "in_app",
    "context_line",
    "pre_context",
    "post_context",
)


def _frames(value: dict[str, Any]) -> list[tuple[str, ...]]:
    # in_app absent and false mean the same to Sentry (otel_sentry marks its own frames false)
    return [
        tuple(str(bool(frame.get(k)) if k == "in_app" else frame.get(k)) for k in FRAME_KEYS)
        for frame in value["stacktrace"]["frames"]
    ]


def test_frames_match_what_sentry_sdk_itself_builds_for_the_same_exception() -> None:
    """Both pipelines in one process, each to its own ingest, for the same live exceptions.

    A propagating exception's traceback grows as it unwinds, so the pipeline that captures it further
    out (sentry-sdk's outer ASGI middleware) has more framework frames at the top; every frame we
    send must be identical to sentry-sdk's frame at the same depth, and no in-app frame may be missing.
    """
    with SentryIngest() as ours, SentryIngest() as sdk, OtlpReceiver() as receiver:
        env = distro_env(ours, receiver, APP_SENTRY_SDK_DSN=sdk.dsn(), OTEL_SENTRY_ADOPT_SENTRY_SDK="false")
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            exercise(app)
            assert app.stop() == 0, app.output()
        sdk_errors = [e for e in sdk.events() if "exception" in e]
        mismatches: list[Any] = []
        missed_by_sentry_sdk: list[str] = []
        compared = 0
        for event in ours.events():
            outer = event["exception"]["values"][-1]
            twins = [
                e
                for e in sdk_errors
                if e["exception"]["values"][-1]["type"] == outer["type"]
                and e["exception"]["values"][-1]["value"] == outer["value"]
            ]
            if not twins:
                # sentry-sdk misses some of these (e.g. a 5xx made by an app's own exception
                # handler); otel_sentry captures them, there is nothing to compare against.
                missed_by_sentry_sdk.append(outer["type"])
                continue
            assert len(twins) == 1, (outer["type"], outer["value"])
            compared += 1
            theirs_values = twins[0]["exception"]["values"]
            assert [(v["type"], v.get("module"), v.get("value")) for v in event["exception"]["values"]] == [
                (v["type"], v.get("module"), v.get("value")) for v in theirs_values
            ]
            for mine, theirs in zip(event["exception"]["values"], theirs_values):
                mine_frames, their_frames = _frames(mine), _frames(theirs)
                assert mine_frames, mine["type"]
                if mine_frames != their_frames[-len(mine_frames) :]:
                    mismatches.append((mine["type"], mine_frames, their_frames))
                their_in_app = [f for f in their_frames if f[5] == "True"]
                assert [f for f in mine_frames if f[5] == "True"] == their_in_app
        assert mismatches == []
        assert len(ours.events()) == len(ISSUES)
        assert compared >= len(ISSUES) - 1, missed_by_sentry_sdk


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "fastapi"}, id="fastapi-native-spans"),
        pytest.param({"FASTAPI_OTEL_AUTO_CONFIGURE": "true"}, id="fastapi-auto-configure"),
        pytest.param(
            {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "fastapi", "FASTAPI_OTEL_AUTO_CONFIGURE": "true"},
            id="native-and-auto-configure",
        ),
    ],
)
def test_fastapi_native_telemetry_gives_the_same_issues_and_exports_once(extra: dict[str, str]) -> None:
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        with AppProcess(
            "errors_app", cwd=APPS, env=distro_env(ingest, receiver, **extra), ready_path="/health"
        ) as app:
            exercise(app)
            assert app.stop() == 0, app.output()
            output = app.output()
        assert Counter(e["transaction"] for e in ingest.events()) == Counter(
            r for r, *_ in ISSUES.values()
        ), output
        requests = len(ISSUES) + len(NOT_ISSUES) + 1  # + the readiness probe
        assert receiver.wait_for(lambda r: len(server_spans(r)) >= requests, 10), output
        span_ids = [s["span_id"] for s in receiver.spans()]
        assert len(span_ids) == len(set(span_ids)), "a span was exported twice"
        assert len(server_spans(receiver)) == requests
        for payload in ingest.events() + ingest.transactions():
            relay.assert_valid(payload)
