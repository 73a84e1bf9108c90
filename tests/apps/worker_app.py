"""A FastAPI app for pre-fork servers: every response and every error names the worker process.

It knows nothing about otel_sentry: telemetry comes from ``opentelemetry-instrument``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import trace

app = FastAPI()


def name_the_worker() -> None:
    trace.get_current_span().set_attribute("worker.pid", os.getpid())


@app.exception_handler(RuntimeError)
async def crashed(request: Request, exc: RuntimeError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=500, headers={"x-worker-pid": str(os.getpid())})


@app.get("/pid")
async def pid(response: Response) -> dict[str, int]:
    name_the_worker()
    response.headers["x-worker-pid"] = str(os.getpid())
    return {"pid": os.getpid()}


@app.get("/boom/{n}")
async def boom(n: int) -> None:
    name_the_worker()
    raise RuntimeError(f"boom {n} from pid {os.getpid()}")
