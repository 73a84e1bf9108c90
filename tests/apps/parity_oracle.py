"""The same FastAPI app and requests under sentry-sdk or under otel_sentry, in a fresh process each.

    python parity_oracle.py sentry_sdk|otel_sentry <dsn> [continuous]

Both send to the loopback ingest at <dsn> with release ``parity@1.0`` and environment ``parity``:
sentry-sdk with ``profiles_sample_rate=1.0`` and request sessions; otel_sentry with
``SENTRY_PROFILES_SAMPLE_RATE=1`` (configure() + the FastAPI instrumentation). Requests: ``/work``
(about 150 ms of Python work: a profile), ``/boom`` (an unhandled ZeroDivisionError) and
``/ok`` x3. The process then flushes and exits; the test compares what the ingest received.
With ``continuous``: continuous profiling in the ``trace`` lifecycle (profile chunks) instead.
"""

from __future__ import annotations

import os
import sys
import time

MODE, DSN = sys.argv[1], sys.argv[2]
CONTINUOUS = sys.argv[3:] == ["continuous"]
RELEASE, ENVIRONMENT = "parity@1.0", "parity"


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def build_app():  # type: ignore[no-untyped-def]
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, int]:
        deadline = time.perf_counter() + 0.15
        total = 0
        while time.perf_counter() < deadline:
            total += fib(15)
        return {"total": total}

    @app.get("/boom")
    async def boom() -> dict[str, float]:
        return {"value": 1 / 0}

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


if MODE == "sentry_sdk":
    import sentry_sdk

    sentry_sdk.init(
        dsn=DSN,
        release=RELEASE,
        environment=ENVIRONMENT,
        traces_sample_rate=1.0,
        **(
            {"profile_session_sample_rate": 1.0, "profile_lifecycle": "trace"}
            if CONTINUOUS
            else {"profiles_sample_rate": 1.0}
        ),
    )
    app = build_app()
else:
    os.environ["OTEL_SENTRY_PROFILE_SESSION_SAMPLE_RATE" if CONTINUOUS else "SENTRY_PROFILES_SAMPLE_RATE"] = (
        "1"
    )
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    import otel_sentry

    otel_sentry.configure(dsn=DSN, release=RELEASE, environment=ENVIRONMENT)
    app = build_app()
    FastAPIInstrumentor.instrument_app(app)

from fastapi.testclient import TestClient  # noqa: E402

with TestClient(app, raise_server_exceptions=False) as client:
    assert client.get("/work").status_code == 200
    assert client.get("/boom").status_code == 500
    for _ in range(3):
        assert client.get("/ok").status_code == 200

time.sleep(0.3)  # the continuous profiler stops on its own once no transaction runs: its last chunk
if MODE == "sentry_sdk":
    sentry_sdk.flush(5)
    client_ = sentry_sdk.get_client()
    if client_.session_flusher is not None:
        client_.session_flusher.flush()
    sentry_sdk.flush(5)
else:
    from opentelemetry import trace

    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    otel_sentry.flush(5)
print("done", flush=True)
