"""The ``sentry`` traces exporter: sampled traces become Sentry transactions.

Registered in ``opentelemetry_traces_exporter``, so ``OTEL_TRACES_EXPORTER=otlp,sentry`` puts it
side by side with any other exporter behind the SDK's own BatchSpanProcessor. Children end before
their local root, possibly in an earlier batch, so they wait here (bounded) until the root arrives.
A root whose request is still being handled (``_in_flight``) waits for the request to settle, so its
transaction says how the request ended.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import _in_flight
from ._fork import reset_in_child
from ._runtime import Runtime, get_runtime
from ._transport import TRANSACTION

logger = logging.getLogger("otel_sentry")


def is_local_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


class SentrySpanExporter(SpanExporter):
    """Maps finished local-root spans and their children to Sentry transactions."""

    def __init__(
        self,
        runtime: Optional[Runtime] = None,
        *,
        max_traces: int = 1000,
        max_spans_per_trace: int = 1000,
        max_wait_seconds: float = 120.0,
    ) -> None:
        if runtime is None:
            # Created by a configurator other than ours (e.g. the stock one): build the bridge from
            # the environment so errors are still captured.
            from ._configure import ensure_runtime

            runtime = ensure_runtime()
        self._runtime = runtime
        self._max_traces = max_traces
        self._max_spans = max_spans_per_trace
        self._max_wait = max_wait_seconds
        self._pending: OrderedDict[int, tuple[float, list[ReadableSpan]]] = OrderedDict()
        self._waiting: OrderedDict[int, ReadableSpan] = OrderedDict()  # span id -> root in flight
        self._lock = threading.Lock()
        self.evicted_spans = 0
        ref = weakref.ref(self)

        def on_settled(span_id: int) -> None:
            exporter = ref()
            if exporter is not None:
                exporter._release([span_id])

        self._on_settled = on_settled
        _in_flight.add_listener(on_settled)
        # A fork taken while the BatchSpanProcessor's thread held this lock would leave it held
        # forever in the child; the held children belong to the parent's traces.
        reset_in_child(self, "_after_fork")

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._pending = OrderedDict()
        self._waiting = OrderedDict()

    @property
    def runtime(self) -> Optional[Runtime]:
        return self._runtime or get_runtime()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        runtime = self.runtime
        if runtime is None or not runtime.settings.transactions:
            return SpanExportResult.SUCCESS
        try:
            roots: list[ReadableSpan] = []
            with self._lock:
                now = time.monotonic()
                for span in spans:
                    if not is_local_root(span):
                        self._hold(span, now)
                    elif _in_flight.is_in_flight(span.context.span_id):
                        self._waiting[span.context.span_id] = span
                        if len(self._waiting) > self._max_traces:  # bounded: the oldest goes as it is
                            roots.append(self._waiting.popitem(last=False)[1])
                    else:
                        roots.append(span)
                # roots whose request settled (or was forgotten) meanwhile
                roots += [self._waiting.pop(i) for i in list(self._waiting) if not _in_flight.is_in_flight(i)]
                self._evict(now)
                batches = [(root, self._take_children(root)) for root in roots]
            for root, children in batches:
                self._send(runtime, root, children)
        except Exception:
            runtime.internal_error("exporting spans to Sentry")
        return SpanExportResult.SUCCESS

    def _release(self, span_ids: Sequence[int]) -> None:
        """Send the transactions of these waiting roots (their requests settled)."""
        runtime = self.runtime
        if runtime is None:
            return
        try:
            with self._lock:
                roots = [self._waiting.pop(i) for i in span_ids if i in self._waiting]
                batches = [(root, self._take_children(root)) for root in roots]
            for root, children in batches:
                self._send(runtime, root, children)
        except Exception:
            runtime.internal_error("exporting spans to Sentry")

    def _hold(self, span: ReadableSpan, now: float) -> None:
        trace_id = span.context.trace_id
        entry = self._pending.get(trace_id)
        if entry is None:
            entry = (now, [])
            self._pending[trace_id] = entry
        if len(entry[1]) >= self._max_spans:
            self.evicted_spans += 1
            runtime = self.runtime
            if runtime is not None:
                runtime.counters["span.dropped.trace_full"] += 1
            return
        entry[1].append(span)

    def _take_children(self, root: ReadableSpan) -> list[ReadableSpan]:
        entry = self._pending.pop(root.context.trace_id, None)
        return entry[1] if entry else []

    def _evict(self, now: float) -> None:
        while self._pending:
            trace_id, (held_since, spans) = next(iter(self._pending.items()))
            if len(self._pending) <= self._max_traces and now - held_since <= self._max_wait:
                break
            del self._pending[trace_id]
            self.evicted_spans += len(spans)

    def _send(self, runtime: Runtime, root: ReadableSpan, children: list[ReadableSpan]) -> None:
        from ._dsc import Identity, transaction_sampling
        from ._profiles import profile_items
        from ._transactions import transaction_event

        identity = Identity(runtime.public_key, runtime.defaults.release, runtime.defaults.environment)
        sample_rate, dsc, promoted = transaction_sampling(root, identity)
        event = transaction_event(root, children, runtime.defaults, sample_rate=sample_rate)
        if promoted:
            # exported because it errored, not because it was sampled: say so, and count it once
            event.setdefault("tags", {})["sampling.promoted"] = "true"
        runtime.submit(event, TRANSACTION, dsc=dsc, items=profile_items(runtime, root, event))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._release(list(self._waiting))  # flushing means sending what is here, settled or not
        runtime = self.runtime
        return runtime.flush(timeout_millis / 1000) if runtime is not None else True

    def shutdown(self) -> None:
        self._release(list(self._waiting))
        _in_flight.remove_listener(self._on_settled)
        runtime = self.runtime
        if runtime is not None:
            runtime.shutdown()
