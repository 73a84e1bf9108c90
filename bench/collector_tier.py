"""Gateway sizing: spans/s one gateway (collector/gateway.yaml) takes in, and its memory per held span.

    python bench/collector_tier.py [--seconds 20] [--decision-wait 10] [--spans-per-trace 5]

Builds (or reuses) the otelcol-otel-sentry distribution with collector/build.sh, starts one
gateway on free ports, and pushes pre-encoded OTLP/HTTP protobuf requests (100 traces of
``--spans-per-trace`` spans each, unique trace ids, no errors) from two connections as fast as it
accepts them for ``--seconds``. Every trace is held for ``decision_wait`` and then dropped (no
policy keeps an error-free trace outside the sampled share, set to 0 here), so the gateway's
resident memory at the end of the run is what traces/s x decision_wait costs. Prints spans/s
accepted (the gateway's own otelcol_receiver_accepted_spans), traces held, RSS, bytes per held
span. The load generator shares the machine's cores with the gateway: the figure is a floor.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.collector import COLLECTOR_DIR, Collector

MARKER = b"\xaa" * 12


def template(traces: int, spans_per_trace: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    )
    scope_spans = resource_spans.scope_spans.add()
    now = time.time_ns()
    for t in range(traces):
        trace_id = MARKER + t.to_bytes(4, "big")
        for s in range(spans_per_trace):
            span = Span(
                trace_id=trace_id,
                span_id=(t * spans_per_trace + s + 1).to_bytes(8, "big"),
                parent_span_id=b"" if s == 0 else (t * spans_per_trace + 1).to_bytes(8, "big"),
                name="GET /v1/models/{model_id}" if s == 0 else f"db.query {s}",
                kind=Span.SPAN_KIND_SERVER if s == 0 else Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1_000_000,
            )
            span.attributes.append(
                KeyValue(key="http.route", value=AnyValue(string_value="/v1/models/{model_id}"))
            )
            span.attributes.append(KeyValue(key="http.request.method", value=AnyValue(string_value="GET")))
            scope_spans.spans.append(span)
    return request.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--decision-wait", type=float, default=10.0)
    parser.add_argument("--spans-per-trace", type=int, default=5)
    args = parser.parse_args()
    traces_per_request = 100
    body = template(traces_per_request, args.spans_per_trace)
    env = {
        "OTEL_SENTRY_DECISION_WAIT": f"{args.decision_wait}s",
        "OTEL_SENTRY_SAMPLE_PERCENT": "0",
        "OTEL_SENTRY_BACKEND_ENDPOINT": "http://127.0.0.1:9",  # never used: nothing is kept
        "OTEL_SENTRY_NUM_TRACES": "2000000",
    }
    gateway = Collector([COLLECTOR_DIR / "gateway.yaml"], env, name="bench-gateway").start()
    counter = [0]
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds
    peak_rss = [0]

    def push(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", gateway.http_port, timeout=30)
        k = offset
        while time.monotonic() < stop:
            payload = body.replace(MARKER, k.to_bytes(12, "big"))
            conn.request(
                "POST", "/v1/traces", body=payload, headers={"Content-Type": "application/x-protobuf"}
            )
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                with lock:
                    counter[0] += 1
            k += 2

    def watch() -> None:
        while time.monotonic() < stop + 1:
            peak_rss[0] = max(peak_rss[0], gateway.rss_bytes())
            time.sleep(0.25)

    try:
        idle_rss = gateway.rss_bytes()
        threads = [threading.Thread(target=push, args=(i,)) for i in range(2)]
        threads.append(threading.Thread(target=watch))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        accepted = gateway.metrics().get("otelcol_receiver_accepted_spans", 0.0)
        refused = gateway.metrics().get("otelcol_receiver_refused_spans", 0.0)
    finally:
        gateway.stop()
    spans_per_s = accepted / args.seconds
    traces_per_s = spans_per_s / args.spans_per_trace
    held_spans = min(accepted, spans_per_s * args.decision_wait)
    extra = peak_rss[0] - idle_rss
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} elapsed={elapsed:.1f}s")
    print(
        f"accepted spans: {accepted:.0f} ({spans_per_s:,.0f} spans/s, {traces_per_s:,.0f} traces/s); "
        f"refused {refused:.0f}"
    )
    print(f"RSS idle {idle_rss / 2**20:.0f} MiB, peak {peak_rss[0] / 2**20:.0f} MiB")
    print(
        f"held at once ~{held_spans:,.0f} spans ({held_spans / args.spans_per_trace:,.0f} traces, "
        f"decision_wait {args.decision_wait:g}s): ~{extra / max(held_spans, 1):,.0f} bytes per held span"
    )


if __name__ == "__main__":
    main()
