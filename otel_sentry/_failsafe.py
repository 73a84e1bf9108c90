"""Our code that runs inside the app's request, made unable to fail it.

The SDK calls span processors (``on_start``/``on_end``) and the sampler synchronously, inside the
``start_span``/``end`` calls the instrumentation makes on the request path, without catching anything:
a bug in ours would fail the user's request. These wrappers turn such a bug into
``Runtime.internal_error`` (logged once per kind with its traceback, counted; re-raised under the test
suite) and a safe fallback: the processor step is skipped, the sampler decides as ``ParentBased``
over "drop" (errors are captured whatever the sampling).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

logger = logging.getLogger("otel_sentry")
_reported: set[str] = set()


def internal_error(what: str) -> None:
    """Report the exception being handled as a bug of ours (see Runtime.internal_error)."""
    from . import _runtime

    runtime = _runtime.get_runtime()
    if runtime is not None:
        runtime.internal_error(what)
        return
    if _runtime.raise_internal_errors:
        raise
    if what not in _reported:
        _reported.add(what)
        logger.exception("otel_sentry: internal error while %s (further ones are not logged)", what)


class GuardedSpanProcessor(SpanProcessor):
    """Runs one of our span processors; its exceptions never reach the span's caller."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor
        self._name = type(processor).__name__

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        try:
            self.processor.on_start(span, parent_context=parent_context)
        except Exception:
            internal_error(f"{self._name}.on_start")

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self.processor.on_end(span)
        except Exception:
            internal_error(f"{self._name}.on_end")

    def shutdown(self) -> None:
        try:
            self.processor.shutdown()
        except Exception:
            internal_error(f"{self._name}.shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return bool(self.processor.force_flush(timeout_millis))
        except Exception:
            internal_error(f"{self._name}.force_flush")
            return False


class GuardedSampler(Sampler):
    """Runs our sampler; an exception becomes a parent-based "drop" decision for that span."""

    _fallback = ParentBased(ALWAYS_OFF)

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def should_sample(
        self,
        parent_context: Optional[Context],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Optional[TraceState] = None,
    ) -> SamplingResult:
        try:
            return self.sampler.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        except Exception:
            internal_error(f"{type(self.sampler).__name__}.should_sample")
            return self._fallback.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

    def get_description(self) -> str:
        return self.sampler.get_description()

    def __getattr__(self, name: str) -> Any:  # record_unsampled, rules, counters, ...
        if name == "sampler":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.sampler, name)


def guard_provider_sampler(provider: Any) -> None:
    """Wrap the provider's sampler when it is ours (a user's own sampler is left as it is)."""
    sampler = getattr(provider, "sampler", None)
    if isinstance(sampler, Sampler) and type(sampler).__module__.startswith("otel_sentry."):
        provider.sampler = GuardedSampler(sampler)
