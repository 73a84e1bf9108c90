"""One variant of bench/profiling_cost.py, in a process of its own (each SDK installs process-wide hooks).

    python _profiling_worker.py <otel_sentry|sentry_sdk> <profiles rate> <dsn> <requests> <concurrency>

Every request is traced (rate 1.0 in both SDKs), so the profile rate is the share of requests that
are profiled. Prints one JSON line: requests, wall seconds, process CPU seconds (all threads: the
sampler thread's work included), produced profiles as the SDK counted them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _asgi import call

MODE, RATE, DSN = sys.argv[1], float(sys.argv[2]), sys.argv[3]
REQUESTS, CONCURRENCY = int(sys.argv[4]), int(sys.argv[5])


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def build_app():  # type: ignore[no-untyped-def]
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat() -> dict[str, int]:
        tokens = fib(16)  # ~1 ms of Python: the gateway's own work
        await asyncio.sleep(0.05)  # the provider call: a profile gets ~5 samples (2 needed to be sent)
        return {"tokens": tokens}

    return app


if MODE == "sentry_sdk":
    import sentry_sdk

    sentry_sdk.init(
        dsn=DSN,
        release="bench@1",
        traces_sample_rate=1.0,
        profiles_sample_rate=RATE or None,
        auto_session_tracking=False,
    )
    app = build_app()
else:
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    os.environ["SENTRY_PROFILES_SAMPLE_RATE"] = str(RATE)
    os.environ["OTEL_SENTRY_AUTO_SESSION_TRACKING"] = "false"
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    import otel_sentry

    otel_sentry.configure(dsn=DSN, release="bench@1")
    app = build_app()
    FastAPIInstrumentor.instrument_app(app)


async def main() -> tuple[float, float]:
    for _ in range(20):  # warm-up: imports, caches, the first envelopes
        await call(app, "POST", "/v1/chat/completions", b"{}")
    queue = list(range(REQUESTS))

    async def worker() -> None:
        while queue:
            queue.pop()
            assert await call(app, "POST", "/v1/chat/completions", b"{}") == 200

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - wall, time.process_time() - cpu


wall_s, cpu_s = asyncio.run(main())
if MODE == "sentry_sdk":
    sentry_sdk.flush(30)
else:
    from opentelemetry import trace

    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    otel_sentry.flush(30)
counters: dict[str, int] = {}
if MODE == "otel_sentry":
    from otel_sentry._runtime import get_runtime

    runtime = get_runtime()
    assert runtime is not None
    counters = {k: v for k, v in runtime.counters.items() if k.startswith(("profile.", "transaction."))}
print(json.dumps({"requests": REQUESTS, "wall_s": wall_s, "cpu_s": cpu_s, "counters": counters}), flush=True)
