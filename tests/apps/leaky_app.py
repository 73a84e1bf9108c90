"""An app that puts secrets everywhere a careless app can: the leak test plants them per request.

The request body says what to plant and where; the route copies it into span attributes, local
variables, the exception message and its notes, as real code does by accident.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from opentelemetry import trace

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/leak")
async def leak(request: Request) -> None:
    body: dict[str, Any] = await request.json()
    secret = body["secret"]  # a recognisable credential (sk- key, JWT, card, AWS key, ...)
    password = body["password"]  # an opaque secret: only its name says it is one
    benign = body["benign"]
    raw_body = json.dumps(body)  # the raw JSON text in a local, as logging code often keeps it
    span = trace.get_current_span()
    span.set_attribute("app.note", f"calling upstream with {body['secret_form']}")
    span.set_attribute("app.password", password)
    span.set_attribute("app.order_ref", benign)
    request.state.user_id = "user-1"
    error = RuntimeError(f"upstream rejected {body['secret_form']} (order {benign})")
    error.add_note(f"retry with password={password}") if hasattr(error, "add_note") else None
    assert raw_body and secret
    raise error
