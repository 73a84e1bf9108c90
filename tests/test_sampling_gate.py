"""Requests the sampler drops skip the instrumentation's middleware (otel_sentry._sampling_gate), and
nothing a user sees changes but the cost: the same decisions at the same rates, one server span per
sampled request, consistent dynamic sampling context, trace ids carried downstream, errors captured.
Every end-to-end assertion runs with the gate on and off; with a metrics exporter every request is
still measured."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_sentry import _sampling_gate
from otel_sentry._dsc import facts_from_trace_state, parse_baggage
from otel_sentry._rules import Rules
from otel_sentry._sampler import OtelSentrySampler
from otel_sentry._sampling_metrics import SamplingCounters
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}
REQUESTS = 60
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def outgoing_dsc(view: dict[str, Any]) -> dict[str, str]:
    return parse_baggage(view["outgoing"].get("baggage", ""))[0]


@pytest.fixture(scope="module", params=["gated", "not gated"])
def served(request: Any) -> Iterator[dict[str, Any]]:
    """One run of the service per mode: /leaf sampled at 0.5, then incoming traces, then an error."""
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER_ARG": "/leaf=0.5",
            "OTEL_SENTRY_BYPASS_UNSAMPLED_REQUESTS": "true" if request.param == "gated" else "false",
        }
        with AppProcess("interop_distro_service", cwd=APPS, env=env, ready_path="/health") as app:
            views = [app.get("/leaf").json() for _ in range(REQUESTS)]
            continued = {
                flag: app.get("/leaf", headers={"traceparent": f"00-{TRACE[:-2]}{flag}-{PARENT}-{flag}"})
                for flag in ("00", "01")
            }
            failed = app.get("/leaf?fail=1", headers={**CLOSE, "traceparent": f"00-{TRACE}-{PARENT}-00"})
            assert failed.status_code == 500
            assert app.stop() == 0, app.output()
        sampled = sum(v["sampled"] for v in views) + 1  # the continued sampled trace
        assert receiver.wait_for(lambda r: len([s for s in r.spans() if s["kind"] == 2]) >= sampled, 10)
        assert ingest.wait_for(lambda i: len(i.transactions()) >= sampled and i.events(), 10)
        yield {
            "views": views,
            "continued": {k: r.json() for k, r in continued.items()},
            "ingest": ingest,
            "receiver": receiver,
        }


def test_head_decisions_keep_their_rate_and_agree_with_their_dsc(served: dict[str, Any]) -> None:
    views = served["views"]
    assert 10 <= sum(v["sampled"] for v in views) <= 50
    for view in views:
        dsc = outgoing_dsc(view)
        assert dsc["sample_rate"] == "0.5"
        assert dsc["sampled"] == ("true" if view["sampled"] else "false")
        assert (float(dsc["sample_rand"]) < 0.5) == view["sampled"], dsc
        assert dsc["trace_id"] == view["trace_id"]
        traceparent = view["outgoing"]["traceparent"].split("-")
        assert traceparent[1] == view["trace_id"]
        assert int(traceparent[3], 16) & 1 == view["sampled"]


def test_one_server_span_and_one_transaction_per_sampled_request_none_for_the_others(
    served: dict[str, Any],
) -> None:
    views, receiver, ingest = served["views"], served["receiver"], served["ingest"]
    sampled = {v["trace_id"] for v in views if v["sampled"]} | {TRACE[:-2] + "01"}
    server_spans = [s for s in receiver.spans() if s["kind"] == 2 and s["name"] == "GET /leaf"]
    assert sorted(s["trace_id"] for s in server_spans) == sorted(sampled)
    transactions = [t for t in ingest.transactions() if t["transaction"] == "/leaf"]
    assert sorted(t["contexts"]["trace"]["trace_id"] for t in transactions) == sorted(sampled)
    heads = 0
    for envelope in ingest.envelopes():
        for transaction in envelope.payloads("transaction"):
            dsc = envelope.headers["trace"]
            assert dsc["sampled"] == "true", dsc
            if transaction["contexts"]["trace"]["trace_id"] != TRACE[:-2] + "01":  # started here
                assert dsc["sample_rate"] == "0.5" and float(dsc["sample_rand"]) < 0.5, dsc
                heads += 1
    assert heads == len(sampled) - 1


def test_incoming_decisions_are_continued_with_their_trace_id(served: dict[str, Any]) -> None:
    for flag, view in served["continued"].items():
        assert view["trace_id"] == TRACE[:-2] + flag
        assert view["sampled"] is (flag == "01")
        assert view["outgoing"]["traceparent"].split("-")[1] == view["trace_id"]
        assert int(view["outgoing"]["traceparent"][-2:], 16) & 1 == int(flag)


def test_an_unsampled_requests_error_is_an_event_in_its_incoming_trace(served: dict[str, Any]) -> None:
    (event,) = served["ingest"].events()
    assert event["exception"]["values"][-1]["value"] == "leaf failed on purpose"
    assert event["contexts"]["trace"]["trace_id"] == TRACE
    assert event["tags"]["endpoint"] == "/leaf"


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "not gated"])
def test_with_a_metrics_exporter_every_request_is_measured(gated: bool) -> None:
    """Dropped requests (/leaf at rate 0) and untraced routes (/health) are counted in the
    instrumentation's duration histogram whether or not they skip its middleware."""
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_TRACES_SAMPLER_ARG": "/sampled/*=1,/leaf=0",
            "OTEL_SENTRY_BYPASS_UNSAMPLED_REQUESTS": str(gated).lower(),
            "OTEL_SENTRY_BYPASS_UNTRACED_ROUTES": str(gated).lower(),
        }
        with AppProcess("interop_distro_service", cwd=APPS, env=env, ready_path="/leaf") as app:
            for _ in range(7):
                assert app.get("/leaf").json()["sampled"] is False
                assert app.get("/health").status_code == 200
            assert app.stop() == 0, app.output()  # the periodic reader exports at shutdown
    counts = {"/leaf": 0, "/health": 0}
    for received in receiver.requests("metrics"):
        body = gzip.decompress(received.raw) if received.raw[:2] == b"\x1f\x8b" else received.raw
        export = ExportMetricsServiceRequest.FromString(body)
        for resource_metrics in export.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name not in ("http.server.duration", "http.server.request.duration"):
                        continue
                    for point in metric.histogram.data_points:
                        attributes = {a.key: a.value.string_value for a in point.attributes}
                        route = attributes.get("http.route") or attributes.get("http.target")
                        if route in counts:
                            counts[route] = max(counts[route], point.count)  # cumulative: the last has all
    # the readiness probe asked /leaf once more
    assert counts == {"/leaf": 8, "/health": 7}


# -- in process: each request is decided, and counted, once -------------------------------------


async def _asgi_get(app: Any, path: str, method: str = "GET", routed: Any = None) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    if routed is not None:  # what Starlette sets before its middleware stack runs
        scope["app"] = routed
    await app(scope, receive, send)
    return int(sent[0]["status"])


async def _plain_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def gated_pipeline(
    rules: list[tuple[str, float]], counters: Optional[SamplingCounters] = None
) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider under the otel_sentry sampler with these rules, its finished spans, and the
    gate on for dropped requests while the block runs."""
    sampler = OtelSentrySampler(Rules().with_sampling(rules), "production", counters=counters)
    provider = TracerProvider(sampler=sampler)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _sampling_gate.configure_gate((), drop_unsampled=True)
    try:
        yield provider, exporter
    finally:
        _sampling_gate.configure_gate((), drop_unsampled=False)


def test_each_request_is_counted_once_and_sampled_spans_keep_the_gates_rand() -> None:
    counters = SamplingCounters()
    with gated_pipeline([("/half", 0.5)], counters) as (provider, exporter):
        gated = _sampling_gate.GatedMiddleware(
            _plain_app, tracer_provider=provider, exclude_spans=["receive", "send"]
        )
        assert isinstance(gated, OpenTelemetryMiddleware)

        async def run() -> None:
            for _ in range(400):
                assert await _asgi_get(gated, "/half") == 204

        asyncio.run(run())
    spans = exporter.get_finished_spans()
    decisions = counters.snapshot()["decisions"]
    assert sum(decisions.values()) == 400, decisions
    assert decisions[("sampled", "/half")] == len(spans)
    assert 140 <= len(spans) <= 260
    for span in spans:
        facts = facts_from_trace_state(span.context.trace_state)
        assert facts is not None and facts.sample_rate == 0.5
        assert facts.sample_rand is not None and facts.sample_rand < 0.5


def test_the_route_a_decision_is_made_on_is_found_per_method_as_the_instrumentation_finds_it() -> None:
    """The gate remembers each path's route: GET /a/b is /a/{x} (never sampled), POST /a/b is /a/b
    (always), however the two interleave."""
    from opentelemetry.instrumentation.fastapi import _get_default_span_details
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def ok(request: Any) -> Response:
        return Response(status_code=204)

    app = Starlette(routes=[Route("/a/{x}", ok, methods=["GET"]), Route("/a/b", ok, methods=["POST"])])
    with gated_pipeline([("/a/b", 1.0), ("/a/{x}", 0.0)]) as (provider, exporter):
        gated = _sampling_gate.GatedMiddleware(
            app, tracer_provider=provider, default_span_details=_get_default_span_details
        )

        async def run() -> None:
            for _ in range(10):
                for method in ("GET", "POST"):
                    assert await _asgi_get(gated, "/a/b", method, routed=app) == 204

        asyncio.run(run())
    names = [span.name for span in exporter.get_finished_spans() if span.kind.name == "SERVER"]
    assert names == ["POST /a/b"] * 10
