"""Scrub spans before any exporter sees them (OTLP, console, sentry, whatever is configured).

The configurator hands the SDK a processor factory that puts this wrapper between the batch
processor and every exporter, so attributes written by any instrumentation or by app code, span
events (exception messages and stack traces), span names and status descriptions all pass the same
rules as Sentry events. It runs in the batch processor's thread, never on the request path, and
passes a span through untouched (no copy) when nothing in it needs scrubbing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from ._redact import (
    REDACTED,
    Scrubber,
    is_harmless_under,
    is_sensitive_header,
    sanitize_query,
    sanitize_url,
    scrubber,
)
from ._request_secrets import redact_spans
from ._span_copy import copy_span

AUDIT_ATTRIBUTE = "otel_sentry.scrubbed"
_URL_KEYS = frozenset({"http.url", "url.full", "http.target"})
_QUERY_KEYS = frozenset({"url.query"})
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")


def _scrub_value(rules: Scrubber, key: str, value: Any) -> Any:
    if isinstance(value, Mapping):  # extended attributes (log records): a map under a name
        return REDACTED if rules.is_sensitive_name(key) else rules.scrub(dict(value))
    if key.startswith(_HEADER_PREFIXES) and is_sensitive_header(key.rsplit(".", 1)[-1]):
        return REDACTED if not isinstance(value, (list, tuple)) else tuple(REDACTED for _ in value)
    if rules.is_sensitive_name(key) and not is_harmless_under(key, value):
        return REDACTED
    if isinstance(value, str):
        if key in _URL_KEYS:
            return sanitize_url(value)
        if key in _QUERY_KEYS:
            return sanitize_query(value)
        return rules.scrub_text(value)
    if isinstance(value, (list, tuple)) and any(isinstance(item, str) for item in value):
        return tuple(rules.scrub_text(item) if isinstance(item, str) else item for item in value)
    return value


def scrub_attributes(
    attributes: Optional[Mapping[str, Any]], rules: Scrubber, found: set[str]
) -> Optional[dict[str, Any]]:
    """A scrubbed copy, or None when nothing needed scrubbing."""
    if not attributes:
        return None
    changed: Optional[dict[str, Any]] = None
    for key, value in attributes.items():
        clean = _scrub_value(rules, key, value)
        clean_key = rules.scrub_text(key) if isinstance(key, str) else key  # a name can be a secret
        if clean_key is not key:
            if changed is None:
                changed = dict(attributes)
            del changed[key]
            changed[clean_key] = clean
            found.add("[key]")
        elif clean != value:
            if changed is None:
                changed = dict(attributes)
            changed[key] = clean
            found.add(key)
    return changed


def scrub_span(span: ReadableSpan, rules: Scrubber) -> ReadableSpan:
    found: set[str] = set()
    attributes = scrub_attributes(span.attributes, rules, found)
    events: Optional[list[Event]] = None
    for index, event in enumerate(span.events):
        clean = scrub_attributes(event.attributes, rules, found)
        event_name = rules.scrub_text(event.name)  # names are data too
        if clean is not None or event_name is not event.name:
            if event_name is not event.name:
                found.add("events.name")
            events = events or list(span.events)
            events[index] = Event(
                event_name, clean if clean is not None else event.attributes, event.timestamp
            )
    links: Optional[list[Link]] = None
    for index, link in enumerate(span.links):
        clean = scrub_attributes(link.attributes, rules, found)
        if clean is not None:
            links = links or list(span.links)
            links[index] = Link(link.context, clean)
    name = rules.scrub_text(span.name)
    status = span.status
    if status.description:
        description = rules.scrub_text(status.description)
        if description != status.description:
            status = Status(status.status_code, description)
            found.add("status.description")
    if name != span.name:
        found.add("name")
    if not found:
        return span
    merged = dict(attributes if attributes is not None else span.attributes or {})
    merged[AUDIT_ATTRIBUTE] = tuple(sorted(found))
    return copy_span(
        span,
        name=name,
        attributes=merged,
        events=events if events is not None else span.events,
        links=links if links is not None else span.links,
        status=status,
    )


class ScrubbingSpanExporter(SpanExporter):
    """Delegates to the wrapped exporter with every span scrubbed."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rules = scrubber()
        spans = redact_spans(spans)  # the secrets their requests carried, under any name
        return self.exporter.export([scrub_span(span, rules) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)
