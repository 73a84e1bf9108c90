"""What a trace carries about its sampling, and the dynamic sampling context (DSC) built from it.

Sentry links the events of one trace and runs its dynamic sampling on the DSC: ``trace_id``,
``public_key``, ``release``, ``environment``, ``transaction``, ``sample_rate``, ``sample_rand`` and
``sampled``, set once by the head of the trace and then frozen. Three places must agree on it: the
``baggage`` of outgoing requests, the envelope header ``trace`` of error events and the one of
transactions. The facts come from:

* the head's decision, kept in the ``otel_sentry`` entry of the W3C ``tracestate`` that the sampler
  puts on the local root span. Children inherit it, non-recording (unsampled) spans carry it too, and
  it travels to downstream services. It holds the sample rate, the transaction name when the route
  was known at the decision, and ``sample_rand`` only when it cannot be derived from the trace id;
* for a trace continued from a Sentry SDK, the incoming DSC (the ``sentry-`` entries of ``baggage``),
  kept in the OpenTelemetry context by the ``sentry`` propagator and, on the local root span, in the
  ``sentry.dsc`` attribute so the exporter still has it when the span is exported.

``sample_rand`` follows Sentry's semantics (a value in [0, 1) with 6 decimals; a trace is sampled
when ``sample_rand < sample_rate``); at the head it is derived from the low 64 bits of the trace id,
so the decision and the value propagated to downstream Sentry SDKs are the same number and no state
has to be kept for it.
"""

from __future__ import annotations

import math
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.context import Context, create_key, get_current
from opentelemetry.trace import SpanContext, TraceState

TRACE_STATE_KEY = "otel_sentry"
#: The sample rate of the head decision, as Relay reads it from OTLP spans: added to local roots only
#: on their way to Sentry (transactions, Sentry's OTLP endpoint), never to other backends' spans.
SAMPLE_RATE_ATTRIBUTE = "sentry.sample_rate"
#: Context key under which the ``sentry`` propagator leaves what it extracted.
INCOMING_KEY = create_key("otel_sentry.incoming_trace")

SENTRY_PREFIX = "sentry-"
_MASK64 = (1 << 64) - 1
_MAX_TRACE_STATE_VALUE = 256


def derived_sample_rand(trace_id: int) -> float:
    """The head's ``sample_rand``: the low 64 bits of the trace id as a fraction, truncated to 6
    decimals (so ``f"{x:.6f}"`` never rounds it up); in [0, 0.999999]."""
    return ((trace_id & _MASK64) * 1_000_000 >> 64) / 1_000_000


def format_rand(value: float) -> str:
    return f"{value:.6f}"


def format_rate(value: float) -> str:
    """As sentry-sdk writes it (``str(float)``)."""
    return str(float(value))


def parse_rate(value: Any) -> Optional[float]:
    """A sample rate in [0, 1], else None."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and 0.0 <= rate <= 1.0 else None


def parse_rand(value: Any) -> Optional[float]:
    """A ``sample_rand`` in [0, 1), else None."""
    try:
        rand = float(value)
    except (TypeError, ValueError):
        return None
    return rand if math.isfinite(rand) and 0.0 <= rand < 1.0 else None


def rand_within(trace_id: int, lower: float, upper: float) -> float:
    """A ``sample_rand`` in [lower, upper) derived from the trace id (Sentry backfills one consistent
    with an incoming decision this way when the incoming DSC has none)."""
    if not lower < upper:
        return derived_sample_rand(trace_id)
    low, high = int(lower * 1_000_000), int(upper * 1_000_000)
    if high <= low:
        return low / 1_000_000
    return (low + ((trace_id & _MASK64) * (high - low) >> 64)) / 1_000_000


# ------------------------------------------------------------------------------------------------
# notes for the Sentry bridge


class TraceNotes:
    """Per-trace facts only the Sentry bridge reads (a frozen incoming DSC, "this trace was
    promoted"), kept beside the spans instead of as span attributes: every other backend gets the
    spans stock OpenTelemetry makes. Bounded: the oldest traces are forgotten (their transactions then
    fall back to what ``tracestate`` says)."""

    def __init__(self, max_traces: int = 4096) -> None:
        self._notes: OrderedDict[int, str] = OrderedDict()
        self._max = max_traces
        self._lock = threading.Lock()

    def put(self, trace_id: int, value: str) -> None:
        with self._lock:
            self._notes[trace_id] = value
            self._notes.move_to_end(trace_id)
            while len(self._notes) > self._max:
                self._notes.popitem(last=False)

    def get(self, trace_id: int) -> Optional[str]:
        return self._notes.get(trace_id)

    def clear(self) -> None:
        with self._lock:
            self._notes.clear()


#: trace id -> the frozen DSC of the Sentry SDK upstream (baggage form), for its transactions
frozen_dscs = TraceNotes()
#: trace id -> "1" when the trace was exported because it errored although it was not sampled
promoted_traces = TraceNotes()


# ------------------------------------------------------------------------------------------------
# the tracestate entry


@dataclass(frozen=True)
class SamplingFacts:
    """The head's decision as kept in ``tracestate``."""

    sample_rate: Optional[float] = None
    sample_rand: Optional[float] = None  # only when it is not the one derived from the trace id
    transaction: Optional[str] = None

    def encode(self) -> str:
        parts = []
        if self.sample_rate is not None:
            parts.append("s:" + format_rate(self.sample_rate))
        if self.sample_rand is not None:
            parts.append("r:" + format_rand(self.sample_rand))
        if self.transaction:
            # everything a tracestate value allows, except our separators and the escape character
            parts.append("t:" + urllib.parse.quote(self.transaction, safe="/{}:@!$&'()*+.-_~[]<>|^`\""))
        value = ";".join(parts)
        if len(value) > _MAX_TRACE_STATE_VALUE:  # a long name is left out rather than the rate
            value = ";".join(parts[:-1])
        return value

    @classmethod
    def decode(cls, value: str) -> SamplingFacts:
        rate = rand = name = None
        for part in value.split(";"):
            key, _, raw = part.partition(":")
            if key == "s":
                rate = parse_rate(raw)
            elif key == "r":
                rand = parse_rand(raw)
            elif key == "t" and raw:
                name = urllib.parse.unquote(raw)
        return cls(rate, rand, name)

    def rand_for(self, trace_id: int) -> float:
        return self.sample_rand if self.sample_rand is not None else derived_sample_rand(trace_id)


def facts_from_trace_state(trace_state: Optional[TraceState]) -> Optional[SamplingFacts]:
    if not trace_state:
        return None
    value = trace_state.get(TRACE_STATE_KEY)
    return SamplingFacts.decode(value) if value is not None else None


def with_facts(trace_state: Optional[TraceState], facts: SamplingFacts) -> TraceState:
    """trace_state with our entry set to facts (other vendors' entries kept)."""
    value = facts.encode()
    if not value:
        return trace_state if trace_state is not None else TraceState()
    if not trace_state:
        return TraceState([(TRACE_STATE_KEY, value)])
    return trace_state.update(TRACE_STATE_KEY, value)


# ------------------------------------------------------------------------------------------------
# what the sentry propagator extracted


@dataclass(frozen=True)
class IncomingTrace:
    """A trace continued from another service, as the ``sentry`` propagator saw it."""

    trace_id: int
    sampled: Optional[bool]  # None: the upstream deferred the decision (``sentry-trace`` without flag)
    dsc: Mapping[str, str]  # the upstream's DSC, when its baggage had ``sentry-`` entries (frozen)

    @property
    def frozen(self) -> bool:
        return bool(self.dsc)


def incoming_trace(context: Optional[Context], trace_id: int) -> Optional[IncomingTrace]:
    """What the propagator extracted into context for this trace, if anything."""
    incoming = (context if context is not None else get_current()).get(INCOMING_KEY)
    if isinstance(incoming, IncomingTrace) and incoming.trace_id == trace_id:
        return incoming
    return None


def decided_dsc(incoming: IncomingTrace, facts: Optional[SamplingFacts]) -> Mapping[str, str]:
    """The incoming frozen DSC, with the rate this process decided at when the upstream deferred the
    decision (sentry-sdk writes that rate into the DSC it continues, frozen or not)."""
    if incoming.sampled is None and facts is not None and facts.sample_rate is not None:
        return {**incoming.dsc, "sample_rate": format_rate(facts.sample_rate)}
    return incoming.dsc


def parse_baggage(headers: Any) -> tuple[dict[str, str], list[str]]:
    """(``sentry-`` items without the prefix, the other members as they were) of baggage headers."""
    if isinstance(headers, str):
        headers = [headers]
    items: dict[str, str] = {}
    others: list[str] = []
    for header in headers or ():
        for member in str(header).split(","):
            member = member.strip()
            if not member:
                continue
            key, sep, value = member.partition("=")
            key = key.strip()
            if key.startswith(SENTRY_PREFIX) and sep:
                name = urllib.parse.unquote(key[len(SENTRY_PREFIX) :])
                # properties (";...") are not part of Sentry's items
                items[name] = urllib.parse.unquote(value.split(";", 1)[0].strip())
            elif sep:
                others.append(member)
    return items, others


def serialize_dsc(dsc: Mapping[str, str]) -> str:
    """The ``sentry-`` members of a baggage header, as sentry-sdk writes them."""
    return ",".join(
        SENTRY_PREFIX + urllib.parse.quote(str(k)) + "=" + urllib.parse.quote(str(v)) for k, v in dsc.items()
    )


def fill_sample_rand(dsc: dict[str, str], trace_id: int, sampled: Optional[bool]) -> None:
    """Give a frozen DSC a valid ``sample_rand`` consistent with the decision (sentry-sdk does the
    same, the one change it makes to a frozen DSC)."""
    if parse_rand(dsc.get("sample_rand")) is not None:
        return
    rate = parse_rate(dsc.get("sample_rate"))
    if sampled is None or rate is None:
        rand = derived_sample_rand(trace_id)
    elif sampled:
        rand = rand_within(trace_id, 0.0, rate)
    else:
        rand = rand_within(trace_id, rate, 1.0)
    dsc["sample_rand"] = format_rand(rand)


# ------------------------------------------------------------------------------------------------
# the DSC


@dataclass(frozen=True)
class Identity:
    """Who the head is: what the process contributes to a DSC it starts."""

    public_key: Optional[str] = None
    release: Optional[str] = None
    environment: Optional[str] = None


def runtime_identity() -> Identity:
    from ._runtime import get_runtime

    runtime = get_runtime()
    if runtime is None:
        return Identity()
    return Identity(runtime.public_key, runtime.defaults.release, runtime.defaults.environment)


def build_dsc(
    trace_id: int,
    sampled: bool,
    facts: Optional[SamplingFacts],
    identity: Identity,
    frozen: Optional[Mapping[str, str]] = None,
) -> dict[str, str]:
    """The DSC of a trace: the frozen incoming one when there is one, else the head's."""
    if frozen:
        dsc = {str(k): str(v) for k, v in frozen.items()}
        fill_sample_rand(dsc, trace_id, sampled)
        return dsc
    dsc = {"trace_id": f"{trace_id:032x}"}
    if identity.public_key:
        dsc["public_key"] = identity.public_key
    if identity.release:
        dsc["release"] = identity.release
    if identity.environment:
        dsc["environment"] = identity.environment
    if facts is not None and facts.transaction:
        dsc["transaction"] = facts.transaction
    if facts is not None and facts.sample_rate is not None:
        dsc["sample_rate"] = format_rate(facts.sample_rate)
    rand = facts.rand_for(trace_id) if facts is not None else derived_sample_rand(trace_id)
    dsc["sample_rand"] = format_rand(rand)
    dsc["sampled"] = "true" if sampled else "false"
    return dsc


def dsc_for_span_context(
    span_context: SpanContext, context: Optional[Context] = None, identity: Optional[Identity] = None
) -> dict[str, str]:
    """The DSC of the trace span_context belongs to, while its request is live (outgoing requests,
    error events)."""
    incoming = incoming_trace(context, span_context.trace_id)
    facts = facts_from_trace_state(span_context.trace_state)
    if facts is None and incoming is not None:
        facts = SamplingFacts(
            parse_rate(incoming.dsc.get("sample_rate")),
            parse_rand(incoming.dsc.get("sample_rand")),
            incoming.dsc.get("transaction"),
        )
    return build_dsc(
        span_context.trace_id,
        span_context.trace_flags.sampled,
        facts,
        identity or runtime_identity(),
        decided_dsc(incoming, facts) if incoming is not None and incoming.frozen else None,
    )


def dsc_for_current_trace(trace_id_hex: str, identity: Identity) -> Optional[dict[str, str]]:
    """The DSC for an event of trace trace_id_hex, when that trace is the current one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid or f"{span_context.trace_id:032x}" != trace_id_hex:
        return None
    return dsc_for_span_context(span_context, None, identity)


def transaction_sampling(root: Any, identity: Identity) -> tuple[Optional[float], dict[str, str], bool]:
    """(sample rate, DSC, promoted) of an exported local root span (a ReadableSpan).

    A trace promoted after an error was not part of the random sample: its transaction says so
    (``sampled`` true, rate 1.0), so Sentry counts it once instead of extrapolating it.
    """
    context = root.context
    promoted = promoted_traces.get(context.trace_id) is not None
    frozen_raw = frozen_dscs.get(context.trace_id)
    frozen = parse_baggage(frozen_raw)[0] if frozen_raw is not None else {}
    facts = facts_from_trace_state(context.trace_state)
    dsc = build_dsc(context.trace_id, True, facts, identity, frozen or None)
    if promoted:
        dsc["sample_rate"] = "1.0"
        dsc["sampled"] = "true"
    rate = parse_rate(dsc.get("sample_rate"))
    if rate is None and facts is not None:  # a frozen DSC without one: the rate this process decided at
        rate = facts.sample_rate
    return rate, dsc, promoted


def otel_baggage_members(context: Optional[Context]) -> list[str]:
    """The W3C baggage of context without Sentry's items, as the baggage propagator writes it."""
    members = []
    for key, value in otel_baggage.get_all(context).items():
        if key.startswith(SENTRY_PREFIX):
            continue
        members.append(urllib.parse.quote(str(key), safe="") + "=" + urllib.parse.quote(str(value), safe=""))
    return members
