"""Plants texts wherever an app can put them, one request carrying many placements.

The request body is a list of ``{"carrier": ..., "text": ...}``; each carrier is a place real code
puts text by accident: span names, attribute names and values, span event names, log messages and
their ``extra=`` attributes and names, metric attributes, breadcrumbs, frame locals and dict keys in
them, the exception message. The route ends with an exception, so the Sentry event carries the
frame locals and breadcrumbs too. Headers, baggage and the query string are set by the client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from opentelemetry import metrics, trace

app = FastAPI()
log = logging.getLogger("placement_app")
log.setLevel(logging.INFO)
tracer = trace.get_tracer("placement_app")
counter = metrics.get_meter("placement_app").create_counter("placements")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def plant(carrier: str, text: str, span: Any, index: int) -> None:
    if carrier == "span_attribute":
        span.set_attribute(f"app.note.{index}", text)
    elif carrier == "span_attribute_name":
        span.set_attribute(text, "1")
    elif carrier == "span_name":
        with tracer.start_as_current_span(text):
            pass
    elif carrier == "span_event_name":
        span.add_event(text)
    elif carrier == "span_event_attribute":
        span.add_event("app.step", {"detail": text})
    elif carrier == "log_message":
        log.warning("upstream said %s", text)
    elif carrier == "log_extra":
        log.warning("upstream call failed", extra={"detail": text})
    elif carrier == "log_extra_name":
        log.warning("upstream call failed", extra={text: "1"})
    elif carrier == "metric_attribute":
        counter.add(1, {"detail": text})
    elif carrier == "breadcrumb":
        log.info("calling upstream with %s", text)


@app.post("/plant")
async def plant_all(request: Request) -> None:
    placements: list[dict[str, str]] = await request.json()
    span = trace.get_current_span()
    local_texts = [p["text"] for p in placements if p["carrier"] == "frame_local"]
    local_keys = {p["text"]: 1 for p in placements if p["carrier"] == "frame_local_key"}
    message = " | ".join(p["text"] for p in placements if p["carrier"] == "exception_message")
    for index, placement in enumerate(placements):
        plant(placement["carrier"], placement["text"], span, index)
    assert local_texts is not None and local_keys is not None
    raise RuntimeError(f"upstream rejected the call: {message}")
