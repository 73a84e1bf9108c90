"""One configuration of bench/overhead.py, in a process of its own (each peer patches globals:
sentry-sdk's hub, OpenTelemetry's providers, FastAPI's class). The orchestrator keeps every worker
alive and asks them in turn, in random order, to serve a batch; only one runs at a time.

    python bench/_peer_worker.py CONFIG DSN OTLP_ENDPOINT

Reads one JSON command a line on stdin, answers one JSON line on stdout:
``{"op": "run", "route": R, "n": N}`` → per-request latencies (ns), and the process CPU time and wall
time of the batch *including a flush* of whatever the configuration exports (so background work
a request causes is paid inside its batch); ``{"op": "stats"}`` → peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _asgi import call  # noqa: E402

HARNESS_MODULES = "_asgi,_peer_worker,__main__"
CONFIGS = ("bare", "seeds", "otel", "otel_lean", "otel_lean_eq", "sentry_otlp", "ours", "ours_otlp")
# Variants, ``CONFIG@V[+V]``: ``all`` (every request sampled), ``none`` (none sampled: each takes the
# unsampled path, not the untraced one), ``nogate`` (otel_sentry's sampling gate off). For the costs
# per sampled and per unsampled request, and what the gate saves (bench/overhead.py, side by side).
VARIANTS = ("otel_lean@all", "otel_lean@none", "ours_otlp@all", "ours_otlp@none", "ours_otlp@none+nogate")
_RATE = {  # variant -> (stock OTEL_TRACES_SAMPLER_ARG, otel_sentry's)
    "all": ("1", "*=1"),
    "none": ("0", "*=0.000000001"),  # a rate of 0 would make every path untraced, a cheaper path
}
CHAT_BODY = json.dumps(
    {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Summarise the attached quarterly report in three bullet points."},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
    }
).encode()
BEARER = b"Bearer sk-bench-0123456789abcdef0123456789abcdef"
# route name -> (method, path, body, authorization, expected status)
ROUTES: dict[str, tuple[str, str, bytes, Any, int]] = {
    "general": ("GET", "/v1/models/gpt-4o", b"", None, 200),
    "chat": ("POST", "/v1/chat/completions", CHAT_BODY, BEARER, 200),
    "health": ("GET", "/health", b"", None, 200),
    "error": ("POST", "/v1/charge/unknown-model", b"", BEARER, 500),
}
OTEL_STOCK_ENV = {
    # opentelemetry-distro's defaults, with OTLP over HTTP (the gRPC exporter is not installed)
    "OTEL_PYTHON_DISTRO": "distro",
    "OTEL_PYTHON_CONFIGURATOR": "configurator",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.1",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    # otel_sentry's own instrumentors are installed in this environment; stock does not have them
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_sentry_starlette,otel_sentry_background",
}


def configure(config: str, dsn: str, otlp: str) -> Callable[[], None]:
    """Set the configuration up as its users do; returns its flush."""
    env = os.environ
    env["OTEL_SERVICE_NAME"] = config
    config, _, variant = config.partition("@")
    flags = set(variant.split("+")) - {""}
    rate = next((_RATE[f] for f in flags if f in _RATE), None)
    if rate is not None:
        stock_rate, ours_rate = rate
        env["BENCH_STOCK_RATE"] = stock_rate
        extra = json.loads(env.get("BENCH_OURS_ENV", "{}"))
        env["BENCH_OURS_ENV"] = json.dumps({**extra, "OTEL_TRACES_SAMPLER_ARG": ours_rate})
    if "nogate" in flags:
        extra = json.loads(env.get("BENCH_OURS_ENV", "{}"))
        env["BENCH_OURS_ENV"] = json.dumps({**extra, "OTEL_SENTRY_BYPASS_UNSAMPLED_REQUESTS": "false"})
    # The harness's own frames (this driver stands where uvicorn would, in site-packages) are not
    # the app's: no configuration reads their locals.
    env["OTEL_SENTRY_IN_APP_EXCLUDE"] = HARNESS_MODULES
    env["SENTRY_ENVIRONMENT"] = "production"
    if config == "bare":
        return lambda: None
    if config == "seeds":
        import sentry_sdk
        from _seeds_setup import init_seeds_sentry

        env["BENCH_SEEDS"] = "1"
        init_seeds_sentry(dsn)
        return lambda: sentry_sdk.flush(10.0)
    if config in ("otel", "otel_lean", "otel_lean_eq"):
        env.update(OTEL_STOCK_ENV)
        env["OTEL_TRACES_SAMPLER_ARG"] = env.pop("BENCH_STOCK_RATE", "0.1")
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
        if config != "otel":
            env["BENCH_LEAN"] = "1"
            env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] += ",fastapi"
        flush = _auto_instrument()
        if config == "otel_lean_eq":  # stock at otel_sentry's per-route rates (bench/_equal_rates.py)
            from _equal_rates import install

            install()
        return flush
    if config == "sentry_otlp":
        import sentry_sdk
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from sentry_sdk.integrations.otlp import OTLPIntegration

        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
        FastAPIInstrumentor().instrument()
        sentry_sdk.init(
            dsn=dsn,
            environment="production",
            integrations=[OTLPIntegration(collector_url=otlp + "/v1/traces", capture_exceptions=True)],
        )

        def flush() -> None:
            from opentelemetry import trace

            trace.get_tracer_provider().force_flush(10_000)  # type: ignore[attr-defined]
            sentry_sdk.flush(10.0)

        return flush
    if config in ("ours", "ours_otlp"):
        env["OTEL_PYTHON_DISTRO"] = "otel_sentry"
        env["OTEL_PYTHON_CONFIGURATOR"] = "otel_sentry"
        env["SENTRY_DSN"] = dsn
        if config == "ours_otlp":
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
        # a variant to measure (e.g. '{"OTEL_SENTRY_PROMOTION": "false"}'): for profiling sessions
        env.update(json.loads(env.pop("BENCH_OURS_ENV", "{}")))
        _auto_instrument()
        import otel_sentry

        def flush_ours() -> None:
            from opentelemetry import trace

            trace.get_tracer_provider().force_flush(10_000)  # type: ignore[attr-defined]
            otel_sentry.flush(10.0)

        return flush_ours
    raise SystemExit(f"unknown configuration {config!r}; one of {', '.join(CONFIGS)}")


def _auto_instrument() -> Callable[[], None]:
    """What ``opentelemetry-instrument`` does at interpreter start (its sitecustomize)."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.auto_instrumentation import initialize

    initialize(swallow_exceptions=False)
    return lambda: trace.get_tracer_provider().force_flush(10_000)  # type: ignore[attr-defined, func-returns-value]


async def serve(flush: Callable[[], None]) -> None:
    import _peer_app

    app = _peer_app.app
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "stats":
            reply: dict[str, Any] = {"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
        elif command["op"] == "run":
            method, path, body, auth, expected = ROUTES[command["route"]]
            latencies = []
            cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
            for _ in range(command["n"]):
                start = time.perf_counter_ns()
                status = await call(app, method, path, body, auth)
                latencies.append(time.perf_counter_ns() - start)
                if status != expected:
                    raise SystemExit(f"{command['route']}: status {status}, expected {expected}")
            flush()
            reply = {
                "latencies_ns": latencies,
                "cpu_ns": time.process_time_ns() - cpu0,
                "wall_ns": time.perf_counter_ns() - wall0,
            }
        else:
            reply = {"error": f"unknown op {command['op']!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    await lifespan.__aexit__(None, None, None)


def main() -> None:
    config, dsn, otlp = sys.argv[1:4]
    flush = configure(config, dsn, otlp)
    asyncio.run(serve(flush))


if __name__ == "__main__":
    main()
