"""A service on plain sentry-sdk (no OpenTelemetry): run with ``uvicorn interop_sdk_service:app``.

``/sampled/call`` and ``/unsampled/call`` start a trace with that decision and call ``<target>/leaf``
(sentry-sdk's httpx integration adds ``sentry-trace`` and ``baggage``); ``/leaf`` continues whatever
comes in. Both answer with what this service saw of the trace.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import sentry_sdk
from fastapi import FastAPI, Request


def traces_sampler(sampling_context: dict[str, Any]) -> float:
    # Sentry's documented pattern: honour an incoming decision, decide only at the head.
    parent = sampling_context.get("parent_sampled")
    if parent is not None:
        return float(parent)
    path = sampling_context.get("asgi_scope", {}).get("path", "")
    return 1.0 if path.startswith("/sampled/") else 0.0


sentry_sdk.init(
    dsn=os.environ["INTEROP_SENTRY_DSN"],
    environment="interop-sdk",
    release="sdk-service@1.0",
    traces_sampler=traces_sampler,
)
app = FastAPI()


def view(request: Request) -> dict[str, Any]:
    transaction = sentry_sdk.get_current_scope().transaction
    assert transaction is not None
    return {
        "service": "sentry-sdk",
        "trace_id": transaction.trace_id,
        "sampled": bool(transaction.sampled),
        "dsc": transaction.get_baggage().dynamic_sampling_context(),
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
