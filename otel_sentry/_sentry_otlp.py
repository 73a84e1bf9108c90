"""Spans sent over OTLP to Sentry's own OTLP endpoint get what Relay reads from them.

Relay extrapolates from ``sentry.sample_rate`` on a trace's root. That is bookkeeping for Sentry
alone, so it is never a span attribute (other backends get the spans stock OpenTelemetry makes); an
OTLP exporter whose endpoint is Sentry's (``.../api/<project>/integration/otlp/...``, as in the
recipe of docs/sampling.md) gets local roots with the rate from ``tracestate`` added on the way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from ._dsc import SAMPLE_RATE_ATTRIBUTE, facts_from_trace_state, promoted_traces
from ._span_copy import copy_span

_SENTRY_OTLP_PATH = "/integration/otlp"


def is_sentry_otlp(exporter: Any) -> bool:
    endpoint = getattr(exporter, "_endpoint", None)
    return isinstance(endpoint, str) and _SENTRY_OTLP_PATH in endpoint


def with_sample_rate(span: ReadableSpan) -> ReadableSpan:
    """A local root with ``sentry.sample_rate`` (1.0 when promoted: counted once); others as they are."""
    context = span.context
    if context is None or (span.parent is not None and not span.parent.is_remote):
        return span
    facts = facts_from_trace_state(context.trace_state)
    if facts is None or facts.sample_rate is None:
        return span
    rate = 1.0 if promoted_traces.get(context.trace_id) is not None else facts.sample_rate
    return copy_span(span, attributes={**(span.attributes or {}), SAMPLE_RATE_ATTRIBUTE: rate})


class SentryOtlpSpanExporter:
    """Wraps an OTLP exporter whose endpoint is Sentry's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        return self._inner.export([with_sample_rate(s) for s in spans])

    def shutdown(self) -> Any:
        return self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> Any:
        return self._inner.force_flush(timeout_millis)


def with_sentry_notes(exporter: Any) -> Any:
    return SentryOtlpSpanExporter(exporter) if is_sentry_otlp(exporter) else exporter
