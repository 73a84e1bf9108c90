"""An app that is not launched by opentelemetry-instrument: it calls otel_sentry.configure() itself."""

from __future__ import annotations

import sys

import otel_sentry

otel_sentry.configure(dsn=sys.argv[1], environment="programmatic", release="prog@1")

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

app = FastAPI()


@app.get("/boom/{n}")
async def boom(n: int) -> None:
    raise LookupError(f"nothing at {n}")


with TestClient(app, raise_server_exceptions=False) as client:
    assert client.get("/boom/4").status_code == 500
assert otel_sentry.flush(5.0)
