"""In-process tail promotion: an unsampled trace that errors is exported after all.

With promotion on, the sampler records unsampled traces (``RECORD_ONLY``: spans are built, the
exporters' BatchSpanProcessors skip them because they are not sampled). This processor holds the
ended spans of each such trace until its local root ends:

* when the trace errors (otel_sentry emits an error event for it, or its local root ends with status
  ERROR) it is promoted: every held span, and every later one, is handed to the export processors as
  a sampled copy marked ``otel_sentry.promoted``, so the trace reaches Sentry as a transaction and
  the OTLP backends complete (as far as this process saw it);
* when the local root ends without an error, the held spans are dropped.

Bounds: spans per trace, traces held and time held; the oldest trace goes first. Every promotion,
every eviction and every dropped span is counted (:mod:`._sampling_metrics`). What is not promoted:
traces of routes at rate 0 (never recorded), the parts of the trace in other processes, and the
sampled flag propagated downstream (an unsampled decision is never turned into sampled).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext, StatusCode, TraceFlags

from ._dsc import promoted_traces
from ._sampling_metrics import SamplingCounters
from ._span_copy import copy_span

ERROR_EVENT = "error_event"
ERROR_STATUS = "error_status"


def _is_local_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


def promoted_copy(span: ReadableSpan) -> ReadableSpan:
    """span as the export processors accept it: sampled, its trace noted as promoted for the Sentry
    bridge (its transaction says rate 1.0, counted once rather than extrapolated); other backends get
    the span as it was recorded."""
    context = span.context
    assert context is not None
    sampled = SpanContext(
        context.trace_id,
        context.span_id,
        is_remote=False,
        trace_flags=TraceFlags(context.trace_flags | TraceFlags.SAMPLED),
        trace_state=context.trace_state,
    )
    promoted_traces.put(context.trace_id, "1")
    return copy_span(span, context=sampled)


class _Held:
    __slots__ = ("open_roots", "promoted", "since", "spans")

    def __init__(self, since: float) -> None:
        self.since = since
        self.spans: list[ReadableSpan] = []
        self.open_roots = 0
        self.promoted = False


class PromotionProcessor(SpanProcessor):
    """Holds unsampled recorded traces; promotes the ones that error. See the module docstring."""

    def __init__(
        self,
        *,
        max_traces: int = 1000,
        max_spans_per_trace: int = 1000,
        max_seconds: float = 60.0,
        counters: Optional[SamplingCounters] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.max_seconds = max_seconds
        self.counters = counters if counters is not None else SamplingCounters()
        self._clock = clock
        self._targets: list[SpanProcessor] = []
        self._held: OrderedDict[int, _Held] = OrderedDict()
        # promoted traces whose local root ended: their late spans are still exported
        self._recently_promoted: OrderedDict[int, None] = OrderedDict()
        # traces let go (evicted: reason; completed without error: ""): their late spans are dropped
        self._gone: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()
        self._shutdown = False

    # -- wiring -----------------------------------------------------------------------------------
    def add_target(self, processor: SpanProcessor) -> None:
        """An export processor (a BatchSpanProcessor) that promoted spans are handed to."""
        self._targets.append(processor)

    def track(self, factory: Callable[[Any], SpanProcessor]) -> Callable[[Any], SpanProcessor]:
        """Wrap the SDK's ``export_span_processor`` factory so every export processor it builds is
        a target."""

        def build(exporter: Any) -> SpanProcessor:
            processor = factory(exporter)
            self.add_target(processor)
            return processor

        return build

    @property
    def held_traces(self) -> int:
        return len(self._held)

    # -- the span processor -----------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        context = span.context
        if context is None or context.trace_flags.sampled or self._shutdown:
            return
        if not _is_local_root(span):
            return
        with self._lock:
            now = self._clock()
            self._expire(now)
            self._gone.pop(context.trace_id, None)
            self._entry(context.trace_id, now).open_roots += 1

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or context.trace_flags.sampled or self._shutdown:
            return
        trace_id = context.trace_id
        is_root = _is_local_root(span)
        forward: list[ReadableSpan] = []
        with self._lock:
            entry = self._held.get(trace_id)
            if entry is None:
                gone = self._gone.get(trace_id)
                if trace_id in self._recently_promoted:
                    forward.append(span)
                elif gone is not None:
                    if gone:
                        self.counters.dropped_span(gone)
                else:
                    entry = self._entry(trace_id, self._clock())
            if entry is not None:
                if entry.promoted:
                    forward.append(span)
                elif is_root or len(entry.spans) < self.max_spans_per_trace:
                    entry.spans.append(span)  # the local root always: it is the transaction
                else:
                    self.counters.dropped_span("max_spans_per_trace")
                if is_root and not entry.promoted and span.status.status_code is StatusCode.ERROR:
                    forward.extend(self._promote_locked(trace_id, entry, ERROR_STATUS))
                if is_root:
                    entry.open_roots -= 1
                    if entry.open_roots <= 0:
                        del self._held[trace_id]
                        if entry.promoted:
                            self._remember_promoted(trace_id)
                        else:
                            self._remember_gone(trace_id, "")
        self._forward(forward)

    def promote(self, trace_id: int, reason: str = ERROR_EVENT) -> bool:
        """Promote a held trace (an error event was emitted for it); False when it is not held
        (sampled, never recorded, already promoted, or already gone)."""
        with self._lock:
            entry = self._held.get(trace_id)
            if entry is None or entry.promoted:
                return False
            spans = self._promote_locked(trace_id, entry, reason)
        self._forward(spans)
        return True

    def shutdown(self) -> None:
        with self._lock:
            self._shutdown = True
            self._held.clear()
            self._recently_promoted.clear()
            self._gone.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # the targets are flushed by the provider, which holds them too

    # -- internals (under the lock) ---------------------------------------------------------------
    def _entry(self, trace_id: int, now: float) -> _Held:
        entry = self._held.get(trace_id)
        if entry is None:
            while len(self._held) >= self.max_traces:
                oldest, evicted = self._held.popitem(last=False)
                self._let_go(oldest, evicted, "max_traces")
            entry = self._held[trace_id] = _Held(now)
        return entry

    def _expire(self, now: float) -> None:
        while self._held:
            trace_id, entry = next(iter(self._held.items()))
            if now - entry.since <= self.max_seconds:
                return
            del self._held[trace_id]
            self._let_go(trace_id, entry, "expired")

    def _promote_locked(self, trace_id: int, entry: _Held, reason: str) -> list[ReadableSpan]:
        entry.promoted = True
        self.counters.promotion(reason)
        spans, entry.spans = entry.spans, []
        return spans

    def _let_go(self, trace_id: int, entry: _Held, reason: str) -> None:
        if entry.promoted:  # what it held was exported already; later spans still are
            self._remember_promoted(trace_id)
        else:
            self.counters.eviction(reason, len(entry.spans))
            self._remember_gone(trace_id, reason)

    def _remember_gone(self, trace_id: int, reason: str) -> None:
        self._gone[trace_id] = reason
        while len(self._gone) > self.max_traces:
            self._gone.popitem(last=False)

    def _remember_promoted(self, trace_id: int) -> None:
        self._recently_promoted[trace_id] = None
        while len(self._recently_promoted) > self.max_traces:
            self._recently_promoted.popitem(last=False)

    def _forward(self, spans: list[ReadableSpan]) -> None:
        for span in spans:
            copy = promoted_copy(span)
            for target in self._targets:
                target.on_end(copy)
