"""A finished span with some of its fields replaced.

Spans are immutable once ended, and the SDK has no copy-with-changes; every exporter wrapper that
changes what leaves (scrubbing, a request's secrets, payload limits, promotion, the sample rate for
Sentry's OTLP endpoint) builds its copy here, so a field the SDK adds to ``ReadableSpan`` is carried
over in one place.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan


def copy_span(span: ReadableSpan, **changes: Any) -> ReadableSpan:
    """``span`` with the named constructor fields (name, context, attributes, events, links,
    status, ...) replaced."""
    fields: dict[str, Any] = {
        "name": span.name,
        "context": span.context,
        "parent": span.parent,
        "resource": span.resource,
        "attributes": span.attributes,
        "events": span.events,
        "links": span.links,
        "kind": span.kind,
        "status": span.status,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "instrumentation_scope": span.instrumentation_scope,
    }
    fields.update(changes)
    return ReadableSpan(**fields)
