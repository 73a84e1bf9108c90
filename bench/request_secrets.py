"""What remembering and replacing a request's own secrets costs, per request, with and without them.

    .venv/bin/python bench/request_secrets.py            # prints, and rewrites the block in
                                                         # docs/request-secrets.md
    .venv/bin/python bench/request_secrets.py --smoke    # a few iterations, nothing written

Measured on the hooks exactly as the pipeline calls them (request start and end, the span processor
for 3 spans, the span export step, the error-event step), on a request without credentials and on a
request with Basic auth, a session cookie and an API key; plus the matcher's throughput on text and
the memory one remembered request holds. Component timings (no server, no network): they isolate
this feature's share of a request from everything else.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

from opentelemetry.sdk.trace import TracerProvider

from otel_sentry import _request_secrets as rs

DOC = Path(__file__).resolve().parent.parent / "docs" / "request-secrets.md"
BEGIN, END = "<!-- bench:request_secrets begin -->", "<!-- bench:request_secrets end -->"

PLAIN = {
    "headers": [(b"host", b"api.local"), (b"accept", b"application/json"), (b"user-agent", b"httpx/0.28")],
    "query_string": b"page=2",
}
BASIC = base64.b64encode(b"admin:c0rrect-h0rse-battery").decode()
CREDENTIALED = {
    "headers": [
        *PLAIN["headers"],
        (b"authorization", f"Basic {BASIC}".encode()),
        (b"cookie", b"session=7f3a9c2e5b8d4f1a; theme=dark"),
        (b"x-api-key", b"gw_live_4c9e2a7f1b3d5e8c"),
    ],
    "query_string": b"page=2",
}


def _event() -> dict[str, Any]:
    """An error event of the usual size: 12 frames with context lines and 6 locals each (~10 KB)."""
    frames = [
        {
            "filename": f"app/module_{i}.py",
            "function": f"handler_{i}",
            "lineno": 10 + i,
            "context_line": f"    result = await client.call(payload, retries={i})",
            "pre_context": ["    try:", "        payload = build(request)"],
            "post_context": ["    except Exception:", "        raise"],
            "vars": {f"v{j}": f"'value {i}-{j} with some text'" for j in range(6)},
        }
        for i in range(12)
    ]
    return {
        "event_id": "0" * 32,
        "level": "error",
        "exception": {
            "values": [{"type": "RuntimeError", "value": "upstream failed", "stacktrace": {"frames": frames}}]
        },
        "request": {
            "url": "http://api.local/v1/chat",
            "method": "POST",
            "headers": {"accept": "application/json"},
        },
        "contexts": {"trace": {"trace_id": "1" * 32, "span_id": "2" * 16}},
        "tags": {"endpoint": "/v1/chat", "http_status": "500"},
    }


def _fresh_credentials() -> dict[str, Any]:
    return {"headers": list(CREDENTIALED["headers"]), "query_string": b""}


def _per_request(scope: dict[str, Any], with_event: bool, iterations: int, new_key: bool = False) -> float:
    """Microseconds per request spent in the request-secrets hooks only (each call timed on its own,
    so the spans' own cost, and the noise of a shared machine around it, is not counted)."""
    provider = TracerProvider()
    processor = rs.RequestSecretsProcessor()
    tracer = provider.get_tracer("bench")
    event = _event()
    rs.registry.clear()
    clock = time.thread_time_ns  # CPU time of this thread: a shared, loaded machine inflates wall time
    spent = 0
    for index in range(iterations):
        if new_key:  # a different API key on every request: every matcher is built
            scope["headers"][-1] = (b"x-api-key", f"gw_live_{index:016d}".encode())
        with tracer.start_as_current_span("server") as server:
            t0 = clock()
            token = rs.start_request(scope)
            spent += clock() - t0
            children = [tracer.start_span(f"child{i}") for i in range(2)]
            for child in children:
                t0 = clock()
                processor.on_start(child)  # type: ignore[arg-type]
                spent += clock() - t0
                child.set_attribute("db.statement", "SELECT * FROM orders WHERE id = $1")
                child.end()
                t0 = clock()
                processor.on_end(child)  # type: ignore[arg-type]
                spent += clock() - t0
            t0 = clock()
            if with_event:
                rs.redact_event(event)
            rs.end_request(token)
            spent += clock() - t0
        t0 = clock()
        rs.redact_spans([server, *children])  # type: ignore[list-item]
        spent += clock() - t0
    rs.registry.clear()
    return max(0.0, spent / iterations - 6 * _timer_pair_ns()) / 1000


def _timer_pair_ns() -> float:
    """What one ``t0 = clock(); spent += clock() - t0`` costs by itself (6 per request above)."""
    clock = time.thread_time_ns
    spent = 0
    for _ in range(20_000):
        t0 = clock()
        spent += clock() - t0
    return spent / 20_000


def _timed(fn: Callable[[], Any], iterations: int) -> float:
    started = time.thread_time()
    for _ in range(iterations):
        fn()
    return (time.thread_time() - started) / iterations * 1e6


def measure(iterations: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for name, scope in (("without credentials", PLAIN), ("with credentials", CREDENTIALED)):
        for with_event in (False, True):
            best = min(_per_request(scope, with_event, iterations) for _ in range(3))
            label = f"{name}, {'failed (1 error event)' if with_event else 'succeeded'}"
            results[label] = best
    fresh = _fresh_credentials()
    for with_event in (False, True):
        best = min(_per_request(fresh, with_event, iterations // 5, new_key=True) for _ in range(3))
        label = f"with a credential never seen before, {'failed' if with_event else 'succeeded'}"
        results[label] = best
    secrets = rs.collect(CREDENTIALED)
    values = tuple(secrets.values)
    build = rs._matcher.__wrapped__  # type: ignore[attr-defined]
    # re caches compiled patterns by their text: purged each time, so the parse and compile are counted
    results["matcher build, uncached (first sight of a credential)"] = _timed(
        lambda: (re.purge(), build(values)), max(10, iterations // 50)
    )
    text = json.dumps(_event()) * 10  # ~100 KB
    pattern = secrets.pattern()
    assert pattern is not None
    per_pass = _timed(lambda: pattern.sub("[REDACTED]", text), max(10, iterations // 50))
    results["matcher throughput, MB/s"] = len(text) / per_pass  # bytes per microsecond = MB/s
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = []
    for i in range(200):
        one = rs.collect(CREDENTIALED)
        one.add(f"extra-secret-{i:06d}")
        held.append(one)
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    before = tracemalloc.get_traced_memory()[0]
    matchers = [build((*values, f"extra-secret-{i:06d}")) for i in range(50)]
    per_matcher = (tracemalloc.get_traced_memory()[0] - before) / len(matchers)
    tracemalloc.stop()
    re.purge()
    results["memory per remembered request (values), KB"] = per_entry / 1024
    results["memory per compiled matcher, KB"] = per_matcher / 1024
    return results


def render(results: dict[str, float], iterations: int) -> str:
    lines = [
        BEGIN,
        f"`.venv/bin/python bench/request_secrets.py` ({iterations} requests per case, best of 3; "
        f"Python {platform.python_version()}, {platform.machine()}).",
        "",
        "| What | Value |",
        "|---|---|",
    ]
    for name, value in results.items():
        unit = "" if ("MB/s" in name or "KB" in name) else " µs per request"
        if name.startswith("matcher build"):
            unit = " µs"
        lines.append(f"| {name} | {value:.1f}{unit} |")
    worst = (
        results["memory per remembered request (values), KB"] * rs.MAX_TRACES
        + results["memory per compiled matcher, KB"] * rs.MATCHER_CACHE
    ) / 1024
    lines.append(
        f"| bound: {rs.MAX_TRACES} remembered requests + {rs.MATCHER_CACHE} cached matchers "
        f"| {worst:.1f} MB |"
    )
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    iterations = 50 if args.smoke else 5000
    block = render(measure(iterations), iterations)
    print(block)
    if not args.smoke:
        text = DOC.read_text()
        start, end = text.index(BEGIN), text.index(END) + len(END)
        DOC.write_text(text[:start] + block + text[end:])


if __name__ == "__main__":
    main()
