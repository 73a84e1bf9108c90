"""Bounded payloads (otel_sentry/_payload_limits.py): values cut when set and marked when exported,
export requests split under what a stock collector accepts, oversized spans dropped and counted."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from otel_sentry import _payload_limits as limits
from otel_sentry._payload_limits import (
    DEFAULT_VALUE_LENGTH,
    TRUNCATED_ATTRIBUTE,
    TRUNCATION_MARK,
    BoundedSpanExporter,
    apply_defaults,
    split,
)

GRPC_DEFAULT_MAX = 4 * 1024 * 1024


class Recording(SpanExporter):
    def __init__(self) -> None:
        self.requests: List[List[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.requests.append(list(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_defaults_apply_only_when_no_standard_limit_is_set() -> None:
    env: Dict[str, str] = {}
    apply_defaults(env)
    assert env == {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": str(DEFAULT_VALUE_LENGTH)}
    for name in (
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    ):
        env = {name: "1000"}
        apply_defaults(env)
        assert env == {name: "1000"}  # the user's own limit is the SDK's business


def _provider(limit: int, exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider(span_limits=SpanLimits(max_attribute_length=limit))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_a_huge_exception_is_cut_when_recorded_and_marked_when_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096")
    recording = Recording()
    provider = _provider(4096, BoundedSpanExporter(recording))
    with provider.get_tracer("t").start_as_current_span("request") as span:
        span.set_attribute("small", "fine")
        try:
            raise ValueError("provider said: " + "y" * 2_000_000)
        except ValueError as exc:
            span.record_exception(exc)
    (exported,) = recording.requests[0]
    event = exported.events[0].attributes
    assert event is not None
    for key in ("exception.message", "exception.stacktrace"):
        value = event[key]
        assert len(value) == 4096 and value.endswith(TRUNCATION_MARK), key
    assert event["exception.stacktrace"].startswith("Traceback (most recent call last)")
    assert exported.attributes is not None and exported.attributes["small"] == "fine"
    assert set(exported.attributes[TRUNCATED_ATTRIBUTE]) == {
        "exception:exception.message",
        "exception:exception.stacktrace",
    }


def test_values_under_the_limit_pass_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4096")
    recording = Recording()
    provider = _provider(4096, BoundedSpanExporter(recording))
    with provider.get_tracer("t").start_as_current_span("request") as span:
        span.set_attribute("text", "x" * 4095)
    (exported,) = recording.requests[0]
    assert exported.attributes is not None and TRUNCATED_ATTRIBUTE not in exported.attributes


_text = st.one_of(st.text(max_size=50), st.text(alphabet="aé€😀", min_size=0, max_size=20_000))
_value = st.one_of(_text, st.integers(-(2**63), 2**63 - 1), st.booleans(), st.lists(_text, max_size=5))


def _span(
    index: int, attributes: Dict[str, Any], resource: Resource, scope: InstrumentationScope
) -> ReadableSpan:
    context = SpanContext(trace_id=index + 1, span_id=index + 1, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(
        name=f"span-{index}",
        context=context,
        attributes=attributes,
        resource=resource,
        instrumentation_scope=scope,
        start_time=1,
        end_time=2,
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(min_size=1, max_size=20), _value, max_size=12), min_size=1, max_size=60),
    st.integers(min_value=2_000, max_value=120_000),
)
def test_every_request_encodes_under_the_limit_and_nothing_else_is_lost(
    attribute_sets: List[Dict[str, Any]], max_bytes: int
) -> None:
    resource = Resource.create({"service.name": "s", "big": "r" * 500})
    scope = InstrumentationScope("scope", "1.0")
    spans = [_span(i, attrs, resource, scope) for i, attrs in enumerate(attribute_sets)]
    requests, oversized = split(spans, max_bytes)
    for request in requests:
        assert encode_spans(request).ByteSize() <= max_bytes
    # order kept, and a span is only dropped when it cannot fit in a request on its own
    assert [s for r in requests for s in r] == [s for s in spans if s not in {o for o, _ in oversized}]
    for span, estimate in oversized:
        assert estimate > max_bytes >= 0
        assert encode_spans([span]).ByteSize() <= estimate


def test_oversized_span_is_dropped_and_counted_never_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    recording = Recording()
    exporter = BoundedSpanExporter(recording, max_bytes=GRPC_DEFAULT_MAX - 1024 * 1024)
    resource = Resource.create({"service.name": "s"})
    scope = InstrumentationScope("scope")
    normal = [_span(i, {"n": i, "text": "t" * 2000}, resource, scope) for i in range(2000)]
    huge = _span(5000, {f"k{i}": "v" * 40_000 for i in range(100)}, resource, scope)
    before = limits.counters.snapshot().get("span.dropped.oversized", 0)
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        assert exporter.export([*normal[:1000], huge, *normal[1000:]]) is SpanExportResult.SUCCESS
    assert [s for r in recording.requests for s in r] == normal
    assert len(recording.requests) >= 2  # 2000 spans of ~2 KB do not fit one 3 MiB request
    assert all(encode_spans(r).ByteSize() <= GRPC_DEFAULT_MAX for r in recording.requests)
    assert limits.counters.snapshot()["span.dropped.oversized"] == before + 1
    assert "dropped span 'span-5000'" in caplog.text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_log_bodies_are_bounded_and_marked_before_the_export_processor_queues_them() -> None:
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from otel_sentry._payload_limits import LogBodyLimit, bound_log_bodies

    provider = LoggerProvider()
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))  # as the SDK's setup does
    assert bound_log_bodies(provider)
    assert bound_log_bodies(object()) is False
    log = logging.getLogger("payload-limits-test")
    log.propagate = False
    handler = LoggingHandler(logger_provider=provider)
    log.addHandler(handler)
    try:
        log.error("upstream said %s", "b" * 200_000, extra={"detail": "d" * 10})
        log.error("short")
    finally:
        log.removeHandler(handler)
    big, short = (item.log_record for item in exporter.get_finished_logs())
    assert isinstance(big.body, str) and len(big.body) == LogBodyLimit().limit
    assert big.body.startswith("upstream said bbb") and big.body.endswith(TRUNCATION_MARK)
    assert big.attributes is not None and big.attributes[TRUNCATED_ATTRIBUTE] == ("body",)
    assert short.body == "short" and TRUNCATED_ATTRIBUTE not in (short.attributes or {})
