"""A FastAPI app with every kind of failure the distro must (or must not) turn into an issue.

It knows nothing about otel_sentry: telemetry comes from ``opentelemetry-instrument``.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

logger = logging.getLogger("errors_app")
app = FastAPI()

if os.environ.get("APP_SENTRY_SDK_DSN"):
    # The seeds' app keeps its own sentry_sdk.init(); errors must still be reported once.
    import sentry_sdk

    sentry_sdk.init(dsn=os.environ["APP_SENTRY_SDK_DSN"], traces_sample_rate=1.0, send_default_pii=True)


class ProviderError(Exception):
    """A provider (LLM API) failed."""


@app.exception_handler(ProviderError)
async def provider_error_handler(request: Request, exc: ProviderError) -> JSONResponse:
    return JSONResponse({"error": "provider unavailable"}, status_code=503)


class Item(BaseModel):
    name: str
    price: float


def call_provider(model: str) -> None:
    raise ConnectionError(f"provider for {model} refused the connection")


@app.get("/health/deep")
async def health_deep(fail: bool = False) -> dict[str, str]:
    from opentelemetry import trace

    with trace.get_tracer("errors_app").start_as_current_span("db.ping"):
        if fail:
            raise RuntimeError("database unreachable")
    return {"status": "ok"}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ok/{item_id}")
async def ok(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/unhandled/{item_id}")
async def unhandled(item_id: int) -> dict[str, int]:
    basket = {"item_id": item_id}
    raise ZeroDivisionError(f"cannot split basket {basket['item_id']} by zero")


@app.get("/sync-unhandled")
def sync_unhandled() -> None:
    raise KeyError("missing-key")


@app.post("/v1/chat/completions")
async def chat(request: Request) -> dict[str, str]:
    try:
        call_provider("gpt-4")
    except Exception as e:
        logger.error("chat failed: %s", e)
        raise HTTPException(status_code=500, detail=f"Error: {e}") from e
    return {}


@app.get("/provider-down")
async def provider_down() -> dict[str, str]:
    try:
        call_provider("claude-3-opus")
    except ConnectionError as e:
        raise ProviderError("openrouter unavailable") from e
    return {}


@app.get("/http-503")
async def http_503() -> None:
    raise HTTPException(status_code=503, detail="maintenance")


@app.get("/not-found")
async def not_found() -> None:
    raise HTTPException(status_code=404, detail="no such thing")


@app.get("/unauthorized")
async def unauthorized() -> None:
    raise HTTPException(status_code=401, detail="bad key")


@app.post("/items")
async def create_item(item: Item) -> Item:
    return item


@app.get("/nested-span")
async def nested_span() -> None:
    """The exception is recorded on the child span and again on the server span as it propagates."""
    from opentelemetry import trace

    with trace.get_tracer("errors_app").start_as_current_span("charge-card"):
        raise RuntimeError("card processor crashed")


@app.get("/sdk-capture")
async def sdk_capture() -> dict[str, str]:
    """The app hands an exception to sentry_sdk itself, then fails with it."""
    import sentry_sdk

    try:
        call_provider("mistral")
    except ConnectionError as e:
        sentry_sdk.capture_exception(e)
        raise HTTPException(status_code=500, detail="provider failed") from e
    return {}
