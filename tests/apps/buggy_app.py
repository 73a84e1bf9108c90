"""A FastAPI app run with bugs injected into otel_sentry's own parts (``APP_BUGS=a,b`` or ``all``).

Each bug raises ``InjectedBug`` from one of the places our code runs: inside the request (span
processor, sampler, request facts and rules, exception-handler hook, event mapper) or off it (the
``sentry`` exporter, the delivery worker). The app itself knows nothing about otel_sentry otherwise.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, HTTPException


class InjectedBug(RuntimeError):
    """A bug planted by the test, never by the app."""


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise InjectedBug("injected bug in otel_sentry")


class BrokenRules:
    def __getattr__(self, name: str) -> Any:
        return _boom


BUGS = {b.strip() for b in os.environ.get("APP_BUGS", "").split(",") if b.strip()}
ALL = {"processor", "sampler", "rules", "hook", "mapper", "exporter", "transport"}
if "all" in BUGS:
    BUGS = ALL


def inject() -> None:
    from otel_sentry import _destinations, _failed_spans, _runtime, _sampler, _starlette, _transactions

    if "processor" in BUGS:
        _failed_spans.FailedSpanRecorder.on_end = _boom  # type: ignore[method-assign]
    if "sampler" in BUGS:
        _sampler.OtelSentrySampler.should_sample = _boom  # type: ignore[method-assign]
    if "rules" in BUGS:
        runtime = _runtime.get_runtime()
        assert runtime is not None
        runtime.rules = BrokenRules()  # type: ignore[assignment]
    if "hook" in BUGS:
        _starlette._observe_handled = _boom
    if "mapper" in BUGS:
        _runtime.error_event = _boom
    if "exporter" in BUGS:
        _transactions.transaction_event = _boom
    if "transport" in BUGS:
        _destinations.HttpDestination.send = _boom  # type: ignore[method-assign]


inject()
app = FastAPI()


@app.get("/ok")
async def ok() -> dict[str, str]:
    return {"status": "fine"}


@app.get("/fail")
async def fail() -> None:
    raise ValueError("the app's own error")


@app.get("/handled")
async def handled() -> None:
    raise HTTPException(status_code=503, detail="maintenance")
