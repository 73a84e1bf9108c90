"""Spans mapped and serialized per second: what each exporter does with a batch before the network.

    python bench/exporter_throughput.py [--traces 2000] [--rounds 7] [--json]

The same finished traces (a server span with its request attributes and four children: a database
query, an outgoing provider call, a cache lookup, an internal step) go through:

* ``otlp``: stock OpenTelemetry's OTLP encoding (``encode_spans(...).SerializeToString()``), what its
  OTLP/HTTP exporter does before gzip and POST;
* ``ours_otlp``: otel_sentry's scrubbing in front of that same encoding;
* ``ours_sentry``: otel_sentry's scrubbing, the mapping of each trace to a Sentry transaction and its
  envelope serialization (what reaches the transport queue).

Rounds alternate between the three; medians. Network and compression are left out on purpose: they
depend on the backend, not on the exporter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_traces(count: int) -> list[tuple[Any, list[Any]]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    server_attributes = {
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "url.scheme": "http",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "server.address": "api.example.com",
        "client.address": "10.0.0.7",
        "user_agent.original": "python-httpx/0.28.1",
        "http.request.header.content_type": ("application/json",),
        "otel_sentry.endpoint_type": "inference_chat",
        "otel_sentry.is_revenue_critical": True,
        "user.id": "user-42",
    }
    for _ in range(count):
        with tracer.start_as_current_span("POST /v1/chat/completions", kind=SpanKind.SERVER) as root:
            root.set_attributes(server_attributes)
            with tracer.start_as_current_span("SELECT api_keys", kind=SpanKind.CLIENT) as db:
                db.set_attributes(
                    {"db.system": "postgresql", "db.statement": "SELECT * FROM api_keys WHERE id = $1"}
                )
            with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT) as call:
                call.set_attributes(
                    {
                        "http.request.method": "POST",
                        "url.full": "https://openrouter.ai/api/v1/chat/completions",
                        "server.address": "openrouter.ai",
                        "http.response.status_code": 200,
                    }
                )
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as cache:
                cache.set_attributes({"db.system": "redis", "db.operation": "GET"})
            with tracer.start_as_current_span("count tokens"):
                pass
    spans = exporter.get_finished_spans()
    traces: dict[int, list[Any]] = {}
    for span in spans:
        traces.setdefault(span.context.trace_id, []).append(span)
    out = []
    for members in traces.values():
        root = next(s for s in members if s.parent is None)
        out.append((root, [s for s in members if s is not root]))
    return out


def pipelines() -> dict[str, Callable[[list[tuple[Any, list[Any]]]], int]]:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from sentry_sdk.envelope import Envelope

    from otel_sentry._event_common import EventDefaults
    from otel_sentry._redact import scrubber
    from otel_sentry._scrubbing_exporter import scrub_span
    from otel_sentry._transactions import transaction_event

    defaults = EventDefaults(release="bench@1", environment="production", server_name="bench")

    def otlp(traces: list[tuple[Any, list[Any]]]) -> int:
        spans = [s for root, children in traces for s in (root, *children)]
        return len(encode_spans(spans).SerializeToString())

    def ours_otlp(traces: list[tuple[Any, list[Any]]]) -> int:
        rules = scrubber()
        spans = [scrub_span(s, rules) for root, children in traces for s in (root, *children)]
        return len(encode_spans(spans).SerializeToString())

    def ours_sentry(traces: list[tuple[Any, list[Any]]]) -> int:
        rules = scrubber()
        size = 0
        for root, children in traces:
            event = transaction_event(
                scrub_span(root, rules), [scrub_span(c, rules) for c in children], defaults, sample_rate=0.1
            )
            envelope = Envelope(headers={"event_id": event["event_id"]})
            envelope.add_transaction(event)  # type: ignore[arg-type]
            size += len(envelope.serialize())
        return size

    return {"otlp": otlp, "ours_otlp": ours_otlp, "ours_sentry": ours_sentry}


def measure(traces_count: int, rounds: int) -> dict[str, dict[str, float]]:
    traces = make_traces(traces_count)
    spans = sum(1 + len(children) for _root, children in traces)
    results: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, run in pipelines().items():
            start = time.perf_counter()
            run(traces)
            results.setdefault(name, []).append(spans / (time.perf_counter() - start))
    return {name: {"spans_per_s": statistics.median(v)} for name, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.traces, args.rounds)
    if args.json:
        print(json.dumps(figures))
        return
    base = figures["otlp"]["spans_per_s"]
    for name, f in figures.items():
        print(f"{name:<12} {f['spans_per_s']:>10.0f} spans/s  {f['spans_per_s'] / base:.2f}x stock OTLP")


if __name__ == "__main__":
    main()
