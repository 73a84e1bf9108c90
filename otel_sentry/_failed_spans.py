"""Evidence for error classification: which child span recorded the exception.

A span processor sees a child span end with an ``exception`` event (a database call, an outgoing
HTTP or LLM request that failed) and notes it on the current request, so that when the exception
reaches the request's capture its category, provider and model come from the span it failed in.
Only recording (sampled) spans get here; classification falls back to the exception itself otherwise.
"""

from __future__ import annotations

from typing import Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

from ._capture import current_request
from ._classify import failed_span_from

MAX_FAILED_SPANS_PER_REQUEST = 10


class FailedSpanRecorder(SpanProcessor):
    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if not span.events or span.kind == SpanKind.SERVER:
            return
        request = current_request()
        if request is None:
            return
        attributes = span.attributes or {}
        for event in span.events:
            if event.name != "exception" or len(request.failed_spans) >= MAX_FAILED_SPANS_PER_REQUEST:
                continue
            event_attributes = event.attributes or {}
            request.failed_spans.append(
                failed_span_from(
                    span.name,
                    attributes,
                    span.kind == SpanKind.CLIENT,
                    str(event_attributes.get("exception.type", "")),
                    str(event_attributes.get("exception.message", "")),
                )
            )

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
