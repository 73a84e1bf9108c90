"""The ``otel_sentry`` sampler: the seeds' per-route rates as an OpenTelemetry sampler.

``OTEL_TRACES_SAMPLER=otel_sentry`` (the distro's default). Decisions, in order:

1. A local child follows its parent: sampled, recorded-only (a trace held for promotion) or dropped.
2. A remote parent's decision is honoured, from W3C ``traceparent`` or ``sentry-trace``; an unsampled
   one is never turned into sampled. When ``sentry-trace`` defers the decision (no flag), the rules
   decide, with the incoming ``sample_rand``.
3. Otherwise this process is the head: the rate of the first rule matching the route template
   (``http.route``, which the FastAPI instrumentation passes at span start), else the URL path
   (``url.path``, or ``http.target`` without its query, for server spans), else the default rate; in a
   full-sampling environment (``development``) every trace. Sampled when ``sample_rand < rate``,
   with ``sample_rand`` derived from the trace id (see :mod:`._dsc`), the value propagated to
   downstream Sentry SDKs, so their decisions agree with this one.

A rate of 0 (the seeds' ``/health`` and ``/metrics``) means not traced at all: the span is not
recorded, which is the cheapest an instrumented request can be. Errors there still become events,
because capture does not depend on spans. Other unsampled traces are recorded but not exported while
tail promotion is on, so that one that errors can still be exported (:mod:`._promotion`).

``OTEL_TRACES_SAMPLER_ARG`` adds rules before the configured ones: comma-separated ``glob=rate``
entries and at most one bare ``rate`` (the default rate), e.g. ``0.05,/v1/chat/*=0.5``. A bad value
is reported in one warning line and ignored as a whole: the configured rules (rules file or the
seeds') apply, never "sample everything".
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes

from ._dsc import (
    SamplingFacts,
    decided_dsc,
    derived_sample_rand,
    facts_from_trace_state,
    frozen_dscs,
    incoming_trace,
    parse_rand,
    parse_rate,
    serialize_dsc,
    with_facts,
)
from ._rules import Rules, load_rules, rate
from ._sampling_metrics import SamplingCounters, process_counters, register_metrics

logger = logging.getLogger("otel_sentry")

PARENT_RULE = "parent"
_MAX_CACHED_STATES = 4096


@dataclass(frozen=True)
class Decided:
    """A request the sampling gate (:mod:`._sampling_gate`) already decided and counted, then let
    through to the instrumentation's middleware."""

    #: the head's ``sample_rand`` it drew (None when the request continues an incoming trace)
    sample_rand: Optional[float]


#: Set by the gate for the server span about to start; taken (and cleared) by the sampler.
decided_by_gate: contextvars.ContextVar[Optional[Decided]] = contextvars.ContextVar(
    "otel_sentry_decided", default=None
)


def _take_decided() -> Optional[Decided]:
    decided = decided_by_gate.get()
    if decided is not None:
        decided_by_gate.set(None)
    return decided


def route_of(attributes: Attributes, kind: Optional[SpanKind]) -> Optional[str]:
    """The route template where the instrumentation gives one, else the server path (both semconv
    generations), else None."""
    if not attributes:
        return None
    route = attributes.get("http.route")
    if isinstance(route, str) and route:
        return route
    if kind is SpanKind.SERVER:
        path = attributes.get("url.path") or attributes.get("http.target")
        if isinstance(path, str) and path:
            return path.split("?", 1)[0]
    return None


def parse_sampler_arg(arg: str) -> tuple[tuple[tuple[str, float], ...], Optional[float]]:
    """``OTEL_TRACES_SAMPLER_ARG``: (rules, default rate); raises ValueError on any bad entry."""
    rules: list[tuple[str, float]] = []
    default: Optional[float] = None
    for entry in arg.split(","):
        entry = entry.strip()
        if not entry:
            continue
        pattern, sep, value = entry.rpartition("=")
        if not sep:
            if default is not None:
                raise ValueError(f"more than one default rate ({entry!r})")
            default = rate(entry)
            continue
        pattern = pattern.strip()
        if not pattern:
            raise ValueError(f"empty pattern in {entry!r}")
        rules.append((pattern, rate(value.strip())))
    if not rules and default is None:
        raise ValueError("no rates in it")
    return tuple(rules), default


class OtelSentrySampler(Sampler):
    """Parent-based, per-route head sampling with Sentry's ``sample_rand`` semantics."""

    def __init__(
        self,
        rules: Optional[Rules] = None,
        environment: Optional[str] = None,
        *,
        record_unsampled: bool = False,
        counters: Optional[SamplingCounters] = None,
    ) -> None:
        self.rules = rules if rules is not None else Rules()
        self.environment = environment
        #: Record unsampled traces (without exporting them) so a trace that errors can be promoted.
        #: Set by the pipeline when a promotion processor is installed.
        self.record_unsampled = record_unsampled
        self.counters = counters if counters is not None else SamplingCounters()
        self._states: dict[tuple[float, Optional[str]], TraceState] = {}
        self._states_lock = threading.Lock()

    # -- the decision -------------------------------------------------------------------------
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
        parent_span = get_current_span(parent_context)
        parent = parent_span.get_span_context()
        # The SDK gives the span the attributes of the result (none when dropped): pass them on.
        if parent.is_valid and not parent.is_remote:
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
            if parent_span.is_recording():
                return SamplingResult(Decision.RECORD_ONLY, attributes, parent.trace_state)
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        decided = _take_decided() if kind is SpanKind.SERVER else None
        route = route_of(attributes, kind)
        sample_rate, rule = self.rules.sampling_rule(route, self.environment)
        if parent.is_valid:
            return self._continue(
                parent_context, parent, trace_id, attributes, sample_rate, rule, count=decided is None
            )
        drawn = decided.sample_rand if decided is not None else None
        sampled = (derived_sample_rand(trace_id) if drawn is None else drawn) < sample_rate
        if decided is None:
            self.counters.decision(sampled, rule)
        http_route = attributes.get("http.route") if attributes else None
        transaction = http_route if isinstance(http_route, str) else None
        if drawn is None:
            state = self._head_state(sample_rate, transaction)
        else:  # the gate drew it from another trace id: kept explicitly, as downstream SDKs will see it
            state = with_facts(None, SamplingFacts(sample_rate, drawn, transaction))
        decision = self._decision(sampled, sample_rate)
        # the rate travels in tracestate: the span gets the attributes stock OpenTelemetry gives it
        return SamplingResult(decision, None if decision is Decision.DROP else attributes, state)

    def _decision(self, sampled: bool, local_rate: float) -> Decision:
        if sampled:
            return Decision.RECORD_AND_SAMPLE
        if self.record_unsampled and local_rate > 0.0:
            return Decision.RECORD_ONLY
        return Decision.DROP

    def _head_state(self, sample_rate: float, transaction: Optional[str]) -> TraceState:
        """The tracestate of a head decision: the same for every trace of a route, so built once."""
        key = (sample_rate, transaction)
        cached = self._states.get(key)
        if cached is None:
            cached = with_facts(None, SamplingFacts(sample_rate, None, transaction))
            with self._states_lock:
                if len(self._states) >= _MAX_CACHED_STATES:
                    self._states.clear()
                self._states[key] = cached
        return cached

    def _continue(
        self,
        parent_context: Optional[Context],
        parent: SpanContext,
        trace_id: int,
        attributes: Attributes,
        local_rate: float,
        rule: str,
        *,
        count: bool = True,
    ) -> SamplingResult:
        incoming = incoming_trace(parent_context, parent.trace_id)
        dsc = incoming.dsc if incoming is not None else {}
        facts = facts_from_trace_state(parent.trace_state)
        decision = incoming.sampled if incoming is not None else parent.trace_flags.sampled
        if facts is None:
            head_rate = parse_rate(dsc.get("sample_rate"))
            rand = parse_rand(dsc.get("sample_rand"))
            if rand is not None and rand == derived_sample_rand(trace_id):
                rand = None
            name = dsc.get("transaction")
            facts = SamplingFacts(head_rate, rand, name)
        if decision is None:
            # deferred upstream: decide here, with the trace's sample_rand, and record our rate; the DSC
            # then carries it, frozen or not, as sentry-sdk writes the rate it decided at
            sampled = facts.rand_for(trace_id) < local_rate
            facts = SamplingFacts(local_rate, facts.sample_rand, facts.transaction)
        else:
            sampled = bool(decision)
            rule = PARENT_RULE
            if facts.sample_rate is None and not (incoming is not None and incoming.frozen):
                # a decision without a DSC (W3C only, sentry-trace without baggage): this process starts
                # the DSC and, as sentry-sdk does, records the inherited decision as the rate
                facts = SamplingFacts(1.0 if sampled else 0.0, facts.sample_rand, facts.transaction)
        if count:
            self.counters.decision(sampled, rule)
        state = with_facts(parent.trace_state, facts)
        decision_made = self._decision(sampled, local_rate)
        if decision_made is Decision.DROP:
            return SamplingResult(decision_made, None, state)
        if incoming is not None and incoming.frozen:  # for this trace's transactions, not a span attribute
            frozen_dscs.put(trace_id, serialize_dsc(decided_dsc(incoming, facts)))
        return SamplingResult(decision_made, attributes, state)

    def get_description(self) -> str:
        return (
            f"OtelSentrySampler{{rules={self.rules.source}, environment={self.environment}, "
            f"record_unsampled={self.record_unsampled}}}"
        )


def sampler_factory(arg: Optional[str] = None) -> Sampler:
    """The ``opentelemetry_traces_sampler`` entry point: called by the SDK with
    ``OTEL_TRACES_SAMPLER_ARG`` (a string or None)."""
    try:
        from ._configure import current_settings
        from ._runtime import get_runtime

        settings = current_settings()
        runtime = get_runtime()
        rules = runtime.rules if runtime is not None else load_rules(settings.rules_file)
        if arg is not None and arg.strip():
            try:
                entries, default = parse_sampler_arg(arg)
                rules = rules.with_sampling(entries, default)
            except ValueError as exc:
                logger.warning(
                    "otel_sentry: invalid OTEL_TRACES_SAMPLER_ARG=%r: %s; expected comma-separated "
                    "glob=rate entries and at most one bare default rate, rates between 0 and 1 "
                    "(e.g. '0.05,/v1/chat/*=0.5'); using the rules from %s without it",
                    arg,
                    exc,
                    rules.source,
                )
        counters = process_counters()
        register_metrics(counters)
        return OtelSentrySampler(rules, settings.environment, counters=counters)
    except Exception:
        # Never let the SDK fall back to its default (which samples everything).
        logger.warning(
            "otel_sentry: could not build the otel_sentry sampler; using the seeds' default rules",
            exc_info=True,
        )
        return OtelSentrySampler(Rules(), None, counters=process_counters())
