"""A transaction says how its request ended even when the batch processor exports the server span
before the request is over (a streaming response that breaks after it started): the ``sentry``
exporter holds a root whose request is in flight until the request settles (otel_sentry._in_flight).
SimpleSpanProcessor exports at span end, which is that race every time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from otel_sentry import _in_flight
from otel_sentry._exporter import SentrySpanExporter
from otel_sentry._runtime import Runtime
from otel_sentry._span_semantics import note_failed_after_end
from otel_sentry.testing import SentryIngest
from tests.support.runtime import sentry_runtime


@pytest.fixture
def runtime(sentry_ingest: SentryIngest) -> Iterator[Runtime]:
    with sentry_runtime(sentry_ingest, transactions=True) as rt:
        yield rt


def _pipeline(runtime: Runtime) -> tuple[TracerProvider, SentrySpanExporter]:
    exporter = SentrySpanExporter(runtime)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_a_root_exported_while_its_request_runs_waits_for_the_outcome(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    provider, _ = _pipeline(runtime)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /stream", kind=SpanKind.SERVER) as span:
        span_id = span.get_span_context().span_id
        _in_flight.started(span_id)
        with tracer.start_as_current_span("query"):
            pass
    assert runtime.flush(5)
    assert sentry_ingest.transactions() == []  # exported, but the request is not over
    note_failed_after_end(span_id)  # the stream broke after the span ended
    _in_flight.settled(span_id)
    assert runtime.flush(5)
    assert sentry_ingest.wait_for(lambda i: len(i.transactions()) == 1, 5)
    (transaction,) = sentry_ingest.transactions()
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    assert [s["description"] for s in transaction["spans"]] == ["query"]  # children kept with it
    provider.shutdown()


def test_roots_of_settled_requests_go_at_once_and_flush_sends_what_waits(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    provider, exporter = _pipeline(runtime)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /done", kind=SpanKind.SERVER):
        pass  # never registered: no request in flight
    with tracer.start_as_current_span("GET /slow", kind=SpanKind.SERVER) as span:
        _in_flight.started(span.get_span_context().span_id)
    assert runtime.flush(5)
    assert [t["transaction"] for t in sentry_ingest.transactions()] == ["GET /done"]
    assert exporter.force_flush(5000)  # flushing sends what is held, settled or not
    assert sentry_ingest.wait_for(lambda i: len(i.transactions()) == 2, 5)
    _in_flight.settled(span.get_span_context().span_id)  # nothing left to send: no second copy
    assert runtime.flush(5)
    assert len(sentry_ingest.transactions()) == 2
    provider.shutdown()
