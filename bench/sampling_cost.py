"""What sampling costs and what it measures, in one process.

1. **Promotion cost on requests that do not error.** Two copies of the same FastAPI app, each with
   its own OpenTelemetry pipeline built like the distro's (otel_sentry sampler with the seeds' rules,
   capture middleware, failed-span recorder, scrubbing BatchSpanProcessors for the ``sentry`` and an
   OTLP exporter to a loopback receiver): one with tail promotion, one without. Requests are driven
   straight into the ASGI apps (no sockets), interleaved in small batches in random order, and the
   per-request latencies of each variant are compared by their medians. Two apps: a minimal one
   (handlers that return a constant: the worst case for relative overhead) and the demo gateway
   (``examples/gateway``: API-key lookup in sqlite, pydantic bodies, a provider call through httpx,
   a credit deduction).
2. **Measured sampling rates per route** over N requests each (default 10,000) through the
   promotion-on pipeline, counted from the spans actually exported, against the configured rates.

    python bench/sampling_cost.py                  # print the tables
    python bench/sampling_cost.py --write-docs     # and put them in docs/sampling.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _asgi import call  # noqa: E402

DOCS = ROOT / "docs" / "sampling.md"
BEGIN, END = "<!-- bench:sampling_cost begin -->", "<!-- bench:sampling_cost end -->"

# (method, path, route, configured rate under the seeds' rules in production)
ROUTES = [
    ("GET", "/health", "/health", 0.0),
    ("GET", "/metrics", "/metrics", 0.0),
    ("POST", "/v1/chat/completions", "/v1/chat/completions", 0.2),
    ("POST", "/v1/messages", "/v1/messages", 0.2),
    ("POST", "/v1/images/generations", "/v1/images/generations", 0.2),
    ("GET", "/api/admin/stats", "/api/admin/stats", 0.5),
    ("GET", "/v1/models/gpt-4", "/v1/models/{model_id}", 0.1),
]


def build_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> dict[str, int]:
        return {"requests": 1}

    @app.post("/v1/chat/completions")
    @app.post("/v1/messages")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        return {"id": "cmpl-1", "model": body.get("model"), "choices": [{"text": "hello"}]}

    @app.post("/v1/images/generations")
    async def images(body: dict[str, Any]) -> dict[str, Any]:
        return {"data": [{"url": "https://example.invalid/1.png"}]}

    @app.get("/api/admin/stats")
    async def admin() -> dict[str, int]:
        return {"users": 2}

    @app.get("/v1/models/{model_id}")
    async def model(model_id: str) -> dict[str, str]:
        return {"id": model_id}

    return app


def build_pipeline(*, promotion: bool, otlp_endpoint: str, rules: Any, environment: str) -> tuple[Any, Any]:
    """(tracer provider, promotion processor or None), wired like configure_pipeline()."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_sentry._exporter import SentrySpanExporter
    from otel_sentry._failed_spans import FailedSpanRecorder
    from otel_sentry._promotion import PromotionProcessor
    from otel_sentry._runtime import get_runtime
    from otel_sentry._sampler import OtelSentrySampler
    from otel_sentry._scrubbing_exporter import ScrubbingSpanExporter

    sampler = OtelSentrySampler(rules, environment, record_unsampled=promotion)
    provider = TracerProvider(sampler=sampler)
    processor = PromotionProcessor() if promotion else None
    provider.add_span_processor(FailedSpanRecorder())
    if processor is not None:
        provider.add_span_processor(processor)
    for exporter in (
        SentrySpanExporter(get_runtime()),
        OTLPSpanExporter(endpoint=otlp_endpoint + "/v1/traces"),
    ):
        bsp = BatchSpanProcessor(ScrubbingSpanExporter(exporter))
        if processor is not None:
            processor.add_target(bsp)
        provider.add_span_processor(bsp)
    return provider, processor


def instrumented(provider: Any, app: Any = None) -> Any:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = app if app is not None else build_app()
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    return app


def load_gateway(name: str) -> Any:
    """A fresh instance of the demo gateway module (its own globals and database)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"gateway_{name}", ROOT / "examples" / "gateway" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


GATEWAY_KEY = b"Bearer gw_live_demo_key_123"
ADMIN_KEY = b"Bearer gw_live_admin_key_456"
CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
# (method, path, body, authorization): non-erroring gateway requests on routes with rate > 0
GATEWAY_REQUESTS = [
    ("POST", "/v1/chat/completions", CHAT, GATEWAY_KEY),
    ("GET", "/api/users/me", b"", GATEWAY_KEY),
    ("GET", "/v1/models", b"", None),
    ("GET", "/api/admin/stats", b"", ADMIN_KEY),
]
MINIMAL_BODY = b'{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}'
MINIMAL_REQUESTS = [
    (m, p, MINIMAL_BODY if m == "POST" else b"", None) for m, p, _r, rate in ROUTES if rate > 0
]


async def measure_cost(
    apps: dict[str, Any], requests: list[Any], rounds: int, batch: int
) -> dict[str, list[float]]:
    """Per-request latency (µs) of each variant; batches interleaved in random order."""
    rng = random.Random(1)
    timings: dict[str, list[float]] = {name: [] for name in apps}
    lifespans = []
    for app in apps.values():
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        lifespans.append(lifespan)
    try:
        for _name, app in apps.items():  # warm up: middleware stacks, caches, connections
            for method, path, body, auth in requests * 20:
                await call(app, method, path, body, auth)
        for _ in range(rounds):
            order = list(apps)
            rng.shuffle(order)
            for name in order:
                app = apps[name]
                for i in range(batch):
                    method, path, body, auth = requests[i % len(requests)]
                    start = time.perf_counter_ns()
                    status = await call(app, method, path, body, auth)
                    timings[name].append((time.perf_counter_ns() - start) / 1000)
                    assert status == 200, (name, path, status)
    finally:
        for lifespan in lifespans:
            await lifespan.__aexit__(None, None, None)
    return timings


async def measure_rates(app: Any, exporter: Any, per_route: int) -> list[tuple[str, float, int, int, float]]:
    rows = []
    for method, path, route, configured in ROUTES:
        exporter.clear()
        for _ in range(per_route):
            assert await call(app, method, path, MINIMAL_BODY if method == "POST" else b"") == 200
        sampled = sum(
            1
            for span in exporter.get_finished_spans()
            if span.parent is None and (span.attributes or {}).get("http.route") == route
        )
        rows.append((route, configured, per_route, sampled, sampled / per_route))
    return rows


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--per-route", type=int, default=10_000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    from opentelemetry import propagate
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_sentry._propagator import install_global_propagators
    from otel_sentry._rules import Rules
    from otel_sentry._runtime import Runtime, set_runtime
    from otel_sentry._settings import load_settings
    from otel_sentry._starlette import instrument_starlette
    from otel_sentry.testing import OtlpReceiver

    install_global_propagators({"OTEL_PROPAGATORS": "tracecontext,baggage,sentry"})
    assert propagate.get_global_textmap()
    inbox = tempfile.mkdtemp(prefix="bench-inbox-")
    set_runtime(Runtime(load_settings({}, environment="production", inbox_dir=Path(inbox)), transports=[]))
    instrument_starlette()

    rules = Rules()
    cost_rows = []
    held_after = evictions = 0
    with OtlpReceiver() as receiver:
        for label, make_app, requests in (
            ("minimal app (constant handlers)", lambda name: None, MINIMAL_REQUESTS),
            ("demo gateway (sqlite auth, pydantic, provider call, credits)", load_gateway, GATEWAY_REQUESTS),
        ):
            apps, providers, promoters = {}, [], []
            for name, promotion in (("promotion off", False), ("promotion on", True)):
                provider, promoter = build_pipeline(
                    promotion=promotion,
                    otlp_endpoint=receiver.endpoint,
                    rules=rules,
                    environment="production",
                )
                apps[name] = instrumented(provider, make_app(name.replace(" ", "_")))
                providers.append(provider)
                promoters += [promoter] if promoter else []
            started = time.time()
            timings = asyncio.run(measure_cost(apps, requests, args.rounds, args.batch))
            cost_rows.append((label, timings, time.time() - started))
            for provider in providers:
                provider.shutdown()
            held_after += sum(p.held_traces for p in promoters)
            evictions += sum(sum(p.counters.snapshot()["evictions"].values()) for p in promoters)

    # rates: the promotion-on pipeline without exporters (the in-process driver outruns any exporter)
    from opentelemetry.sdk.trace import TracerProvider

    from otel_sentry._promotion import PromotionProcessor
    from otel_sentry._sampler import OtelSentrySampler

    sampler = OtelSentrySampler(rules, "production", record_unsampled=True)
    rates_provider = TracerProvider(sampler=sampler)
    promotion = PromotionProcessor()
    rates_exporter = InMemorySpanExporter()
    rates_provider.add_span_processor(promotion)
    rates_provider.add_span_processor(promotion.track(SimpleSpanProcessor)(rates_exporter))
    started = time.time()
    rates = asyncio.run(measure_rates(instrumented(rates_provider), rates_exporter, args.per_route))
    rate_seconds = time.time() - started
    counters = sampler.counters.snapshot()

    lines = [
        f"Measured by `bench/sampling_cost.py` on {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs "
        f"({time.strftime('%Y-%m-%d')}).",
        "",
        f"**Promotion cost on requests that do not error** (per app: {args.rounds} rounds of "
        f"{args.batch} requests per variant, interleaved in random order, cycling over routes with "
        "rate > 0 under the seeds' rates, so that about three quarters of them are unsampled; "
        "medians, then their ratio):",
        "",
        "| App | promotion off: median (p90) µs | promotion on: median (p90) µs | ratio of medians | "
        "added per request |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, timings, _seconds in cost_rows:
        off_t, on_t = timings["promotion off"], timings["promotion on"]
        med_off, med_on = statistics.median(off_t), statistics.median(on_t)
        lines.append(
            f"| {label} | {med_off:.0f} ({percentile(off_t, 0.9):.0f}) | {med_on:.0f} "
            f"({percentile(on_t, 0.9):.0f}) | **{med_on / med_off:.2f}** | +{med_on - med_off:.0f} µs |"
        )
    lines += [
        "",
        f"Unsampled traces still held after the runs: {held_after}; evictions: {evictions}.",
        "",
        f"**Measured sampling rates** ({args.per_route} requests per route through the promotion-on "
        f"pipeline, sampled = exported server spans; {rate_seconds:.0f} s):",
        "",
        "| Route | Configured | Requests | Sampled | Measured | Within 4.5 sigma |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    for route, configured, n, sampled, measured in rates:
        sigma = math.sqrt(n * configured * (1 - configured))
        ok = abs(sampled - n * configured) <= 4.5 * sigma + 1e-9
        lines.append(
            f"| `{route}` | {configured:.2f} | {n} | {sampled} | {measured:.4f} | {'yes' if ok else 'NO'} |"
        )
    report = "\n".join(lines)
    print(report)
    print(json.dumps({f"{d} {r}": v for (d, r), v in sorted(counters["decisions"].items())}, indent=1))
    if args.write_docs:
        text = DOCS.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        DOCS.write_text(text[:start] + "\n" + report + "\n" + text[end:])
        print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
