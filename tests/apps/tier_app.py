"""A small FastAPI app for the collector-tier tests: fine requests, failing ones, and huge errors.

It knows nothing about otel_sentry: telemetry comes from ``opentelemetry-instrument``.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace

app = FastAPI()
tracer = trace.get_tracer("tier_app")


class BigRepr:
    """An object whose repr is ``size`` characters, built only when asked (as a big payload is)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return "BigRepr(" + "x" * self.size + ")"


@app.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ok/{n}")
async def ok(n: int) -> dict[str, int]:
    with tracer.start_as_current_span("work"):
        return {"n": n}


@app.get("/boom/{n}")
async def boom(n: int) -> None:
    with tracer.start_as_current_span("work"):
        raise RuntimeError(f"request {n} failed")


@app.get("/huge-message/{mb}")
async def huge_message(mb: int) -> None:
    raise ValueError("provider said: " + "y" * (mb * 1024 * 1024))


@app.get("/huge-repr/{mb}")
async def huge_repr(mb: int) -> None:
    raise ValueError(BigRepr(mb * 1024 * 1024))


@app.get("/wide")
async def wide() -> dict[str, str]:
    """A span whose attributes add up to more than one export request may carry."""
    with tracer.start_as_current_span("wide") as span:
        for i in range(100):
            span.set_attribute(f"blob.{i}", "z" * 40_000)
    return {"status": "ok"}
