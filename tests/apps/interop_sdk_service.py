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
    return 1.0 if path.startswith("/sampled/") else 0.5 if path.startswith("/half/") else 0.0


# INTEROP_SDK_SAMPLE_RATE: a plain traces_sample_rate instead (sentry-sdk then keeps an incoming
# decision's sample_rate in the DSC; its traces_sampler pattern above writes 1.0 or 0.0 instead)
fixed_rate = os.environ.get("INTEROP_SDK_SAMPLE_RATE")
sentry_sdk.init(
    dsn=os.environ["INTEROP_SENTRY_DSN"],
    environment="interop-sdk",
    release="sdk-service@1.0",
    **({"traces_sample_rate": float(fixed_rate)} if fixed_rate else {"traces_sampler": traces_sampler}),
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
