"""Spans lost to an OTLP backend are counted by reason, with one warning per outage (issue 13 item 7).

The real OTLP/HTTP exporter against a loopback receiver that refuses, answers 4xx/5xx, or never
answers; the counters, the log lines and the metric are what an operator would read.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_sentry import _export_losses
from otel_sentry._export_losses import LossCountingSpanExporter, reason_of, snapshot, wrap_span_exporter
from otel_sentry.testing import OtlpReceiver
from tests.support.apps import free_port


def losses(exporter: str = "OTLPSpanExporter") -> dict[str, int]:
    return {
        reason: n
        for (signal, name, reason), n in snapshot().items()
        if name == exporter and signal == "spans"
    }


@pytest.fixture(autouse=True)
def fresh_counters(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from otel_sentry import _shutdown

    monkeypatch.setattr(_shutdown, "_deadline", None)  # not shutting down (another test may have been)
    with _export_losses._lock:
        _export_losses._lost.clear()
    yield


def export_spans(exporter: LossCountingSpanExporter, count: int) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    tracer = provider.get_tracer("t")
    for i in range(count):
        with tracer.start_as_current_span(f"span {i}"):
            pass


def our_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "otel_sentry" and r.levelno >= logging.WARNING
    ]


def test_a_refused_backend_is_one_warning_and_counted_then_recovery_says_what_was_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there: connection refused
    inner = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=0.5)
    exporter = LossCountingSpanExporter(inner)
    with caplog.at_level(logging.DEBUG):
        export_spans(exporter, 3)
    assert losses() == {"refused": 3}
    warnings = our_warnings(caplog)
    assert len(warnings) == 1 and "failing (refused)" in warnings[0], warnings
    # the exporter's own per-attempt lines are held back during the outage
    assert not [
        r
        for r in caplog.records
        if r.name.startswith("opentelemetry.exporter") and r.levelno >= logging.WARNING
    ]

    with OtlpReceiver() as receiver:
        inner2 = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=2)
        exporter._inner = inner2  # the same backend comes back (a collector restarted)
        caplog.clear()
        export_spans(exporter, 1)
        assert len(receiver.spans()) == 1
    (recovered,) = our_warnings(caplog)
    assert "recovered; lost meanwhile: 3 refused" in recovered


@pytest.mark.parametrize(
    ("status", "reason"), [(400, "http_4xx"), (413, "too_large"), (429, "http_429"), (503, "http_5xx")]
)
def test_http_failures_are_counted_by_status_class(status: int, reason: str) -> None:
    with OtlpReceiver() as receiver:
        receiver.respond_with(status, times=None)
        inner = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=0.5)
        export_spans(LossCountingSpanExporter(inner), 2)
        assert receiver.requests("traces"), "the exporter did reach the backend"
    assert losses() == {reason: 2}


def test_a_backend_that_never_answers_is_a_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        inner = OTLPSpanExporter(
            endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces", timeout=0.5
        )
        export_spans(LossCountingSpanExporter(inner), 1)
    assert losses() == {"timeout": 1}


def test_losses_are_a_metric_by_signal_exporter_and_reason() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    _export_losses._count("spans", "OTLPSpanExporter", "http_5xx", 7)
    _export_losses._metrics_registered = False
    from opentelemetry import metrics

    original = metrics.get_meter
    try:
        metrics.get_meter = lambda name, *a, **k: provider.get_meter(name)  # type: ignore[assignment]
        _export_losses.register_metrics()
    finally:
        metrics.get_meter = original  # type: ignore[assignment]
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        (dict(p.attributes or {}), p.value)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "otel_sentry.export.lost"
        for p in m.data.data_points  # type: ignore[union-attr]
    ]
    assert points == [
        (
            {
                "otel_sentry.export.signal": "spans",
                "otel_sentry.export.exporter": "OTLPSpanExporter",
                "otel_sentry.export.reason": "http_5xx",
            },
            7,
        )
    ]


def test_once_the_shutdown_budget_is_spent_nothing_more_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_sentry import _shutdown

    monkeypatch.setattr(_shutdown, "_deadline", 0.0)  # shutdown began long ago: no budget left
    with OtlpReceiver() as receiver:
        inner = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=2)
        export_spans(LossCountingSpanExporter(inner), 2)
        assert receiver.requests("traces") == []
    assert losses() == {"shutdown": 2}


def test_our_own_exporters_are_not_wrapped_they_count_their_losses_as_client_reports() -> None:
    from otel_sentry._exporter import SentrySpanExporter

    ours = SentrySpanExporter.__new__(SentrySpanExporter)
    assert wrap_span_exporter(ours) is ours
    otlp = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    assert isinstance(wrap_span_exporter(otlp), LossCountingSpanExporter)
    assert reason_of(None) == "failed"
