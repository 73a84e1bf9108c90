"""The collector tier, end to end with the real collector built from collector/manifest.yaml.

An app under ``opentelemetry-instrument`` with otel_sentry (head sampling + tail promotion) and a
plain OpenTelemetry service (exports every span) -> one agent (collector/agent.yaml, load
balancing by trace id) -> two gateways (collector/gateway.yaml + gateway-sentry.yaml: tail
sampling) -> a loopback OTLP backend per gateway and a loopback Sentry OTLP endpoint; the app's
own Sentry events and transactions go to a loopback Sentry ingest.

Bounded: ~560 traces, decision_wait 3 s; about 40 s warm (plus a one-off build when the binary
is missing).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import httpx
import pytest

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess
from tests.support.collector import (
    COLLECTOR_DIR,
    Collector,
    CollectorUnavailable,
    collector_binary,
    gateways_list,
)

# a cold collector build (the first test to need it) takes minutes
pytestmark = pytest.mark.timeout(2000)
APPS = Path(__file__).parent / "apps"
DECISION_WAIT = 3.0
APP_RATE = 0.3
GATEWAY_PERCENT = 50
OK_REQUESTS = 120
ERROR_REQUESTS = 20
PLAIN_TRACES = 200
LATE_ERROR_TRACES = 10


def _sigma_bounds(n: int, p: float, sigmas: float = 4.5) -> tuple[float, float]:
    spread = sigmas * (n * p * (1 - p)) ** 0.5
    return n * p - spread, n * p + spread


def _by_trace(spans: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    traces: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    return traces


@pytest.fixture(scope="module")
def tier() -> Iterator[Dict[str, Any]]:
    try:
        collector_binary()
    except CollectorUnavailable as exc:
        pytest.skip(str(exc))
    with contextlib.ExitStack() as stack:
        backend_a, backend_b, sentry_otlp = (stack.enter_context(OtlpReceiver()) for _ in range(3))
        ingest = stack.enter_context(SentryIngest())
        gateway_env = {
            "OTEL_SENTRY_DECISION_WAIT": f"{DECISION_WAIT}s",
            "OTEL_SENTRY_SAMPLE_PERCENT": str(GATEWAY_PERCENT),
            "SENTRY_OTLP_TRACES_ENDPOINT": sentry_otlp.endpoint + "/v1/traces",
            "SENTRY_OTLP_AUTH": "sentry sentry_key=public",
        }
        configs = [COLLECTOR_DIR / "gateway.yaml", COLLECTOR_DIR / "gateway-sentry.yaml"]
        gateways = [
            Collector(
                configs, {**gateway_env, "OTEL_SENTRY_BACKEND_ENDPOINT": backend.endpoint}, name=f"gw{i}"
            )
            for i, backend in enumerate((backend_a, backend_b))
        ]
        for gateway in gateways:
            gateway.start()
        agent = Collector(
            [COLLECTOR_DIR / "agent.yaml"],
            {"OTEL_SENTRY_GATEWAYS": gateways_list([g.grpc_endpoint for g in gateways])},
            name="agent",
        ).start()
        try:
            result = _run_traffic(agent, gateways, backend_a, backend_b, sentry_otlp, ingest)
            print(_figures(result))  # the closing-note figures, shown with pytest -s
            yield result
        finally:
            agent.stop()
            for gateway in gateways:
                gateway.stop()


def _plain_provider(agent: Collector) -> Any:
    """A service on stock OpenTelemetry that exports every span (no otel_sentry)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "plain-service"}))
    exporter = OTLPSpanExporter(endpoint=agent.http_endpoint + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    return provider


def _run_traffic(
    agent: Collector,
    gateways: List[Collector],
    backend_a: OtlpReceiver,
    backend_b: OtlpReceiver,
    sentry_otlp: OtlpReceiver,
    ingest: SentryIngest,
) -> Dict[str, Any]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    env = {
        "SENTRY_DSN": ingest.dsn(),
        "OTEL_SERVICE_NAME": "tier-app",
        "OTEL_TRACES_EXPORTER": "otlp,sentry",
        "OTEL_EXPORTER_OTLP_ENDPOINT": agent.http_endpoint,
        "OTEL_TRACES_SAMPLER_ARG": str(APP_RATE),
        "OTEL_SENTRY_PROMOTION": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    app = AppProcess("tier_app", cwd=APPS, env=env).start()
    try:
        order = ["ok"] * OK_REQUESTS + ["boom"] * ERROR_REQUESTS
        random.Random(7).shuffle(order)
        for n, kind in enumerate(order):
            # a new connection each time: uvicorn closes one after an unhandled exception
            status = httpx.get(f"{app.url}/{kind}/{n}", timeout=10).status_code
            assert status == (200 if kind == "ok" else 500)
    finally:
        app.stop()

    provider = _plain_provider(agent)
    tracer = provider.get_tracer("plain")
    plain_ids: Set[str] = set()
    for n in range(PLAIN_TRACES):
        with tracer.start_as_current_span("GET /items/{id}", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/items/{id}")
            plain_ids.add(format(root.get_span_context().trace_id, "032x"))
            with tracer.start_as_current_span("db.query", attributes={"n": n}):
                pass
    # errors that arrive after the rest of their trace, within decision_wait
    late_ids: Set[str] = set()
    held = []
    for _ in range(LATE_ERROR_TRACES):
        root = tracer.start_span("GET /slow", kind=SpanKind.SERVER, attributes={"http.route": "/slow"})
        late_ids.add(format(root.get_span_context().trace_id, "032x"))
        from opentelemetry import trace

        held.append(tracer.start_span("provider.call", context=trace.set_span_in_context(root)))
        root.end()
    provider.force_flush()
    time.sleep(1.0)
    for child in held:
        child.set_status(Status(StatusCode.ERROR, "provider timed out"))
        child.end()
    provider.force_flush()
    provider.shutdown()

    # every decision is taken decision_wait after a trace's first span; wait past the last one
    ingest.wait_for(lambda i: len(i.events()) >= ERROR_REQUESTS, timeout=15)
    time.sleep(DECISION_WAIT + 3.0)
    return {
        "backends": [backend_a.spans(), backend_b.spans()],
        "sentry_otlp": sentry_otlp.spans(),
        "events": ingest.events(),
        "transactions": ingest.transactions(),
        "plain_ids": plain_ids,
        "late_ids": late_ids,
        "gateway_metrics": [g.metrics() for g in gateways],
    }


def _figures(tier: Dict[str, Any]) -> str:
    per_gateway = [len({s["trace_id"] for s in spans}) for spans in tier["backends"]]
    app_traces = _app_traces(tier)
    error_ids = {e["contexts"]["trace"]["trace_id"] for e in tier["events"]}
    kept = {s["trace_id"] for b in tier["backends"] for s in b}
    return (
        f"error traces kept whole: {len(error_ids & set(app_traces))}/{len(error_ids)}; traces per gateway: "
        f"{per_gateway}; app ok traces kept: {len(set(app_traces) - error_ids)}/{OK_REQUESTS} (head rate "
        f"{APP_RATE}); plain traces kept: {len(kept & tier['plain_ids'])}/{PLAIN_TRACES} (gateway "
        f"{GATEWAY_PERCENT}%); late errors kept: {len(kept & tier['late_ids'])}/{LATE_ERROR_TRACES}; "
        f"Sentry: {len(tier['events'])} events, {len(tier['transactions'])} transactions, "
        f"{len(tier['sentry_otlp'])} spans over OTLP"
    )


def _app_traces(tier: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    spans = [
        s for backend in tier["backends"] for s in backend if s["resource"].get("service.name") == "tier-app"
    ]
    return _by_trace(spans)


def test_every_error_trace_arrives_whole(tier: Dict[str, Any]) -> None:
    events = tier["events"]
    assert len(events) == ERROR_REQUESTS
    app_traces = _app_traces(tier)
    transactions = {t["contexts"]["trace"]["trace_id"]: t for t in tier["transactions"]}
    for event in events:
        trace_id = event["contexts"]["trace"]["trace_id"]
        spans = app_traces.get(trace_id)
        assert spans, f"error trace {trace_id} did not reach the backend"
        # whole: the server span, its work span and the ASGI send spans, as in Sentry's transaction
        assert len(spans) == len(transactions[trace_id]["spans"]) + 1
        assert {s["name"] for s in spans} >= {"GET /boom/{n}", "work"}


def test_each_trace_lands_on_exactly_one_gateway(tier: Dict[str, Any]) -> None:
    a, b = ({s["trace_id"] for s in spans} for spans in tier["backends"])
    assert a and b, "both gateways must get traces"
    assert not a & b
    share = len(a) / (len(a) + len(b))
    assert 0.25 < share < 0.75, share  # trace ids hash evenly over two gateways


def test_sampled_shares_are_within_tolerance(tier: Dict[str, Any]) -> None:
    app_traces = _app_traces(tier)
    error_ids = {e["contexts"]["trace"]["trace_id"] for e in tier["events"]}
    ok_kept = len(set(app_traces) - error_ids)
    low, high = _sigma_bounds(OK_REQUESTS, APP_RATE)
    assert low <= ok_kept <= high, (ok_kept, low, high)  # the app's head rate, kept as is
    plain_kept = {s["trace_id"] for b in tier["backends"] for s in b} & tier["plain_ids"]
    low, high = _sigma_bounds(PLAIN_TRACES, GATEWAY_PERCENT / 100)
    assert low <= len(plain_kept) <= high, (len(plain_kept), low, high)  # the gateway's share


def test_an_error_arriving_within_decision_wait_is_kept(tier: Dict[str, Any]) -> None:
    traces = _by_trace([s for b in tier["backends"] for s in b])
    for trace_id in tier["late_ids"]:
        assert sorted(s["name"] for s in traces.get(trace_id, [])) == ["GET /slow", "provider.call"]


def test_nothing_reaches_sentry_twice(tier: Dict[str, Any]) -> None:
    events, transactions = tier["events"], tier["transactions"]
    assert len({e["event_id"] for e in events}) == len(events)
    transaction_ids = [t["contexts"]["trace"]["trace_id"] for t in transactions]
    assert len(set(transaction_ids)) == len(transaction_ids)
    # Sentry's transactions are exactly the app's traces the backends got (sampled + promoted) ...
    assert set(transaction_ids) == set(_app_traces(tier))
    # ... and the gateways never send those traces to Sentry's OTLP endpoint a second time,
    sentry_spans = tier["sentry_otlp"]
    assert not {s["trace_id"] for s in sentry_spans} & set(transaction_ids)
    assert all(s["resource"].get("service.name") == "plain-service" for s in sentry_spans)
    # while the other services' kept traces reach it, each span once.
    counts = Counter(s["span_id"] for s in sentry_spans)
    assert counts and max(counts.values()) == 1
    kept_plain = {s["trace_id"] for b in tier["backends"] for s in b} & (tier["plain_ids"] | tier["late_ids"])
    assert {s["trace_id"] for s in sentry_spans} == kept_plain


def test_spans_are_never_delivered_twice(tier: Dict[str, Any]) -> None:
    counts = Counter(s["span_id"] for b in tier["backends"] for s in b)
    assert max(counts.values()) == 1
