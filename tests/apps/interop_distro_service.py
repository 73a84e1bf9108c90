"""The same service for ``opentelemetry-instrument`` (otel_sentry's distro): it knows nothing about
otel_sentry. Outgoing calls go through httpx, instrumented by OpenTelemetry."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from opentelemetry import propagate, trace

app = FastAPI()


def view(request: Request) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    outgoing: dict[str, str] = {}
    propagate.inject(outgoing)  # what an outgoing request made here would carry
    return {
        "service": "otel_sentry",
        "trace_id": f"{context.trace_id:032x}",
        "sampled": context.trace_flags.sampled,
        "outgoing": outgoing,
        "incoming": {h: request.headers.get(h) for h in ("traceparent", "sentry-trace", "baggage")},
    }


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/leaf")
async def leaf(request: Request, fail: int = 0) -> dict[str, Any]:
    if fail:
        raise RuntimeError("leaf failed on purpose")
    return view(request)


@app.get("/sampled/call")
@app.get("/unsampled/call")
async def call(request: Request, target: str, fail: int = 0) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{target}/leaf", params={"fail": fail} if fail else None)
    callee = response.json() if response.status_code == 200 else {"status": response.status_code}
    return {"caller": view(request), "callee": callee}


@app.get("/sampled/hop")
@app.get("/unsampled/hop")
@app.get("/half/hop")
async def hop(request: Request, via: str = "") -> list[dict[str, Any]]:
    """A chain of services: this one's view, then those of ``via`` (comma-separated base URLs) in order."""
    views = [view(request)]
    if via:
        first, _, rest = via.partition(",")
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{first}{request.url.path}", params={"via": rest} if rest else None)
        views += response.json()
    return views
