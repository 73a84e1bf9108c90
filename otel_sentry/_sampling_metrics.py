"""Sampling counters: decisions by rule, promotions, evictions; exported as OpenTelemetry metrics.

Counting is a dict increment under a lock on the request path; the OTel instruments are observable
counters that read the totals only when a metric reader collects, so a process without a metrics
exporter pays nothing more.

Metrics (meter ``otel_sentry``):

* ``otel_sentry.sampling.decisions`` ({trace}): local-root decisions, attributes
  ``otel_sentry.sampling.decision`` (``sampled`` | ``unsampled``) and ``otel_sentry.sampling.rule``
  (the matching glob, ``default``, ``environment``, or ``parent`` when an incoming decision was
  honoured);
* ``otel_sentry.sampling.promotions`` ({trace}): unsampled traces exported because they errored,
  attribute ``otel_sentry.sampling.reason`` (``error_event`` | ``error_status``);
* ``otel_sentry.sampling.evictions`` ({trace}): held unsampled traces let go before their local root
  ended, attribute ``otel_sentry.sampling.reason`` (``max_traces`` | ``expired``);
* ``otel_sentry.sampling.dropped_spans`` ({span}): spans of held traces dropped, attribute
  ``otel_sentry.sampling.reason`` (``max_spans_per_trace`` | ``max_traces`` | ``expired``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any, Optional

DECISION = "otel_sentry.sampling.decision"
RULE = "otel_sentry.sampling.rule"
REASON = "otel_sentry.sampling.reason"


class SamplingCounters:
    """Thread-safe totals; cheap to bump, read by snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.promotions: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()
        self.dropped_spans: Counter[str] = Counter()

    def decision(self, sampled: bool, rule: str) -> None:
        with self._lock:
            self.decisions["sampled" if sampled else "unsampled", rule] += 1

    def promotion(self, reason: str) -> None:
        with self._lock:
            self.promotions[reason] += 1

    def eviction(self, reason: str, spans: int) -> None:
        with self._lock:
            self.evictions[reason] += 1
            if spans:
                self.dropped_spans[reason] += spans

    def dropped_span(self, reason: str) -> None:
        with self._lock:
            self.dropped_spans[reason] += 1

    def snapshot(self) -> dict[str, dict[Any, int]]:
        with self._lock:
            return {
                "decisions": dict(self.decisions),
                "promotions": dict(self.promotions),
                "evictions": dict(self.evictions),
                "dropped_spans": dict(self.dropped_spans),
            }

    def reset(self) -> None:
        with self._lock:
            for counter in (self.decisions, self.promotions, self.evictions, self.dropped_spans):
                counter.clear()


_process_counters = SamplingCounters()
_registered: set[tuple[int, int]] = set()
_registered_lock = threading.Lock()


def process_counters() -> SamplingCounters:
    """The counters the distro's sampler and promotion share (one set per process)."""
    return _process_counters


def register_metrics(counters: SamplingCounters, meter_provider: Optional[Any] = None) -> None:
    """Expose counters as observable counters (once per counters and provider)."""
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation

    key = (id(counters), id(meter_provider))
    with _registered_lock:
        if key in _registered:
            return
        _registered.add(key)
    meter = metrics.get_meter("otel_sentry", meter_provider=meter_provider)

    def decisions(_options: CallbackOptions) -> Iterable[Observation]:
        for (decision, rule), value in counters.snapshot()["decisions"].items():
            yield Observation(value, {DECISION: decision, RULE: rule})

    def by_reason(name: str) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            for reason, value in counters.snapshot()[name].items():
                yield Observation(value, {REASON: reason})

        return callback

    meter.create_observable_counter(
        "otel_sentry.sampling.decisions",
        callbacks=[decisions],
        unit="{trace}",
        description="Sampling decisions on local root spans, by decision and rule",
    )
    meter.create_observable_counter(
        "otel_sentry.sampling.promotions",
        callbacks=[by_reason("promotions")],
        unit="{trace}",
        description="Unsampled traces exported because they errored",
    )
    meter.create_observable_counter(
        "otel_sentry.sampling.evictions",
        callbacks=[by_reason("evictions")],
        unit="{trace}",
        description="Held unsampled traces let go before their local root ended",
    )
    meter.create_observable_counter(
        "otel_sentry.sampling.dropped_spans",
        callbacks=[by_reason("dropped_spans")],
        unit="{span}",
        description="Spans of held unsampled traces dropped by the promotion bounds",
    )
