"""Tail promotion: an unsampled trace that errors reaches Sentry and the OTLP backends after all,
within bounds, with every promotion and eviction counted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_sentry._dsc import Identity, promoted_traces, transaction_sampling
from otel_sentry._promotion import PromotionProcessor
from otel_sentry._propagator import SentryPropagator
from otel_sentry._rules import Rules
from otel_sentry._sampler import OtelSentrySampler
from otel_sentry._sampling_metrics import SamplingCounters
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support import relay
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
#: what the Sentry bridge alone needs to know about a span; never an attribute other backends see
BOOKKEEPING = frozenset({"sentry.sample_rate", "sentry.dsc", "otel_sentry.promoted"})
NEVER = Rules(sampling=(), default_sample_rate=0.000001, full_sampling_environments=frozenset())


class Pipeline:
    """Our sampler (recording unsampled traces), the promotion processor, an in-memory exporter."""

    def __init__(self, **bounds: Any) -> None:
        self.clock = [0.0]
        self.counters = SamplingCounters()
        self.promotion = PromotionProcessor(counters=self.counters, clock=lambda: self.clock[0], **bounds)
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=OtelSentrySampler(NEVER, "production", record_unsampled=True))
        self.provider.add_span_processor(self.promotion)
        self.provider.add_span_processor(self.promotion.track(SimpleSpanProcessor)(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def exported(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def request(self, *, children: int = 2, error: bool = False) -> Any:
        with self.tracer.start_as_current_span(
            "GET /x", kind=SpanKind.SERVER, attributes={"http.route": "/x"}
        ) as root:
            for i in range(children):
                with self.tracer.start_as_current_span(f"child {i}"):
                    pass
            if error:
                root.set_status(Status(StatusCode.ERROR, "boom"))
        return root


def test_unsampled_traces_without_errors_are_recorded_then_dropped() -> None:
    p = Pipeline()
    for _ in range(50):
        root = p.request()
        assert root.attributes["http.route"] == "/x"  # recorded ...
        assert not root.get_span_context().trace_flags.sampled  # ... not sampled
    assert p.exported() == [] and p.promotion.held_traces == 0
    assert p.counters.snapshot()["promotions"] == {} and p.counters.snapshot()["evictions"] == {}


def test_a_root_ending_in_error_promotes_the_whole_trace() -> None:
    p = Pipeline()
    root = p.request(children=3, error=True)
    spans = p.exported()
    assert sorted(s.name for s in spans) == ["GET /x", "child 0", "child 1", "child 2"]
    assert all(s.context.trace_flags.sampled for s in spans)
    # promotion is the Sentry bridge's bookkeeping, not an attribute other backends see
    assert not any(k in BOOKKEEPING for s in spans for k in s.attributes or {})
    assert promoted_traces.get(root.get_span_context().trace_id) is not None
    assert {s.context.trace_id for s in spans} == {root.get_span_context().trace_id}
    (exported_root,) = [s for s in spans if s.parent is None]
    rate, _dsc, promoted = transaction_sampling(exported_root, Identity())
    assert (rate, promoted) == (1.0, True)  # counted once, not extrapolated
    assert exported_root.attributes["http.route"] == "/x"
    assert p.counters.snapshot()["promotions"] == {"error_status": 1}


def test_an_error_event_promotes_what_was_held_and_everything_after_it() -> None:
    p = Pipeline()
    with p.tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER) as root:
        with p.tracer.start_as_current_span("db"):
            pass
        trace_id = root.get_span_context().trace_id
        assert p.exported() == []
        assert p.promotion.promote(trace_id) is True  # what Runtime.submit does for an error event
        assert [s.name for s in p.exported()] == ["db"]
        assert p.promotion.promote(trace_id) is False  # once
        with p.tracer.start_as_current_span("http send"):
            pass
        # the decision propagated downstream stays unsampled: promotion is local
        headers: dict[str, str] = {}
        SentryPropagator().inject(headers)
        assert headers["sentry-trace"].endswith("-0")
        late = p.tracer.start_span("background")
    late.end()  # after the root: still part of the promoted trace
    assert [s.name for s in p.exported()] == ["db", "http send", "GET /x", "background"]
    assert p.counters.snapshot()["promotions"] == {"error_event": 1}


def test_sampled_and_never_recorded_traces_are_not_held() -> None:
    p = Pipeline()
    p.provider = TracerProvider(sampler=OtelSentrySampler(Rules(), "production", record_unsampled=True))
    p.provider.add_span_processor(p.promotion)
    tracer = p.provider.get_tracer("t")
    with tracer.start_as_current_span(
        "GET /health", kind=SpanKind.SERVER, attributes={"http.route": "/health"}
    ) as s:
        assert not s.is_recording() and p.promotion.held_traces == 0
        assert p.promotion.promote(s.get_span_context().trace_id) is False


def test_spans_per_trace_are_bounded_but_the_root_is_kept() -> None:
    p = Pipeline(max_spans_per_trace=3)
    p.request(children=5, error=True)
    assert sorted(s.name for s in p.exported()) == ["GET /x", "child 0", "child 1", "child 2"]
    assert p.counters.snapshot()["dropped_spans"] == {"max_spans_per_trace": 2}


def test_traces_held_are_bounded_oldest_first() -> None:
    p = Pipeline(max_traces=2)
    roots = [p.tracer.start_span("GET", kind=SpanKind.SERVER) for _ in range(3)]
    for root in roots:
        with trace.use_span(root):
            p.tracer.start_span("child").end()
    assert p.promotion.held_traces == 2
    assert p.promotion.promote(roots[0].get_span_context().trace_id) is False  # evicted
    assert p.promotion.promote(roots[2].get_span_context().trace_id) is True
    for root in roots:
        root.end()
    snapshot = p.counters.snapshot()
    assert snapshot["evictions"] == {"max_traces": 1}
    assert snapshot["dropped_spans"] == {"max_traces": 2}  # the evicted trace's child and root
    assert p.promotion.held_traces == 0


def test_traces_are_held_for_a_bounded_time() -> None:
    p = Pipeline(max_seconds=30)
    stuck = p.tracer.start_span("GET stuck", kind=SpanKind.SERVER)
    with trace.use_span(stuck):
        p.tracer.start_span("child").end()
    p.clock[0] = 31.0
    p.request()  # any new local root checks the age of what is held
    assert p.counters.snapshot()["evictions"] == {"expired": 1}
    assert p.counters.snapshot()["dropped_spans"] == {"expired": 1}
    assert p.promotion.held_traces == 0
    stuck.end()


# -- end to end --------------------------------------------------------------------------------

ERRORS = [
    ("GET", "/unhandled/7"),
    ("GET", "/sync-unhandled"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/provider-down"),
    ("GET", "/http-503"),
    ("GET", "/nested-span"),
]


def metric_totals(receiver: OtlpReceiver) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    """The last value of every otel_sentry.sampling.* data point exported over OTLP."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    totals: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for request in receiver.requests("metrics"):
        message = ExportMetricsServiceRequest()
        message.ParseFromString(request.raw)
        for resource_metrics in message.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if not metric.name.startswith("otel_sentry.sampling."):
                        continue
                    for point in metric.sum.data_points:
                        attributes = tuple(sorted((a.key, a.value.string_value) for a in point.attributes))
                        totals[metric.name, attributes] = point.as_int
    return totals


def run(tmp_path: Path, **extra: str) -> tuple[SentryIngest, OtlpReceiver, str]:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"sampling": {"/health*": 0}, "default_sample_rate": 0.000001}))
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
            "SENTRY_DSN": ingest.dsn(),
            "SENTRY_ENVIRONMENT": "e2e",
            "OTEL_SENTRY_RULES_FILE": str(rules),
            "OTEL_SENTRY_PROMOTION": "true",
            **extra,
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            for _ in range(2):
                for method, path in ERRORS:
                    assert (
                        app.client.request(method, path, headers={"Connection": "close"}).status_code >= 500
                    )
            for i in range(20):
                assert app.get(f"/ok/{i}").status_code == 200
            # an upstream that decided "not sampled": its errored part here is promoted too
            parent = {"traceparent": "00-" + "1f" * 16 + "-" + "2e" * 8 + "-00", "Connection": "close"}
            assert app.get("/unhandled/1", headers=parent).status_code == 500
            assert app.stop() == 0, app.output()
            output = app.output()
        receiver.wait_for(lambda r: False, 0.5)
        return ingest, receiver, output


def test_unsampled_error_traces_are_promoted_to_sentry_and_otlp_and_others_cost_no_export(
    tmp_path: Path,
) -> None:
    ingest, receiver, output = run(tmp_path)
    n = 2 * len(ERRORS) + 1
    events, transactions = ingest.events(), ingest.transactions()
    assert len(events) == n, output
    assert len(transactions) == n  # one per errored trace, none for the 20 fine requests
    error_traces = {e["contexts"]["trace"]["trace_id"] for e in events}
    assert {t["contexts"]["trace"]["trace_id"] for t in transactions} == error_traces
    assert "1f" * 16 in error_traces
    for transaction in transactions:
        assert transaction["tags"]["sampling.promoted"] == "true"
        relay.assert_valid(transaction)
    for envelope in ingest.envelopes():
        if envelope.payloads("transaction"):
            assert envelope.headers["trace"]["sampled"] == "true"
            assert envelope.headers["trace"]["sample_rate"] == "1.0"
    # the OTLP backend gets the same traces, complete: every span Sentry got, and the server spans
    spans = receiver.spans()
    assert {s["trace_id"] for s in spans} == error_traces
    assert not any(k in BOOKKEEPING for s in spans for k in s["attributes"])
    by_trace = Counter(s["trace_id"] for s in spans)
    for transaction in transactions:
        assert by_trace[transaction["contexts"]["trace"]["trace_id"]] == len(transaction["spans"]) + 1
    (nested,) = [t for t in transactions if t["transaction"] == "/nested-span"][:1]
    assert "charge-card" in [s["description"] for s in nested["spans"]]
    # counted, and exported as OTel metrics
    totals = metric_totals(receiver)
    promotions = sum(v for (name, _), v in totals.items() if name == "otel_sentry.sampling.promotions")
    assert promotions == n, totals
    decisions = {a: v for (name, a), v in totals.items() if name == "otel_sentry.sampling.decisions"}
    assert (
        decisions[(("otel_sentry.sampling.decision", "unsampled"), ("otel_sentry.sampling.rule", "default"))]
        == n - 1 + 20
    )
    assert (
        decisions[(("otel_sentry.sampling.decision", "unsampled"), ("otel_sentry.sampling.rule", "parent"))]
        == 1
    )


def test_with_promotion_off_unsampled_errors_are_events_only(tmp_path: Path) -> None:
    ingest, receiver, output = run(tmp_path, OTEL_SENTRY_PROMOTION="false")
    assert len(ingest.events()) == 2 * len(ERRORS) + 1, output
    assert ingest.transactions() == [] and receiver.spans() == []


@pytest.mark.parametrize("bad", ["0", "-1", "lots"])
def test_bad_bounds_warn_and_fall_back(bad: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from otel_sentry._settings import load_settings

    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        settings = load_settings({"OTEL_SENTRY_PROMOTION_MAX_TRACES": bad})
    assert settings.promotion_max_traces == 1000
    assert "OTEL_SENTRY_PROMOTION_MAX_TRACES" in caplog.text
