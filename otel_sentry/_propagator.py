"""The ``sentry`` propagator: ``sentry-trace`` and Sentry's ``baggage`` items, next to W3C's.

``OTEL_PROPAGATORS=tracecontext,baggage,sentry`` (the distro's default). Extracting:

* ``sentry-trace: <trace_id>-<span_id>[-<sampled>]`` continues the trace when there is no W3C
  ``traceparent``, or when both name the same trace (then W3C's parent span and ``tracestate`` are
  kept, and the ``sentry-trace`` flag, which can say "deferred", gives the decision). When both are
  present and disagree, ``traceparent`` wins: it was written by the nearest traced hop.
* the ``sentry-`` items of ``baggage`` are the upstream's dynamic sampling context; when present they
  are frozen (kept as they are for the rest of the trace, as Sentry requires), unless they name
  another trace.

Injecting (after ``tracecontext`` and ``baggage``): ``sentry-trace`` with the span's decision (never
"sampled" for an unsampled span, even one recorded for promotion) and a ``baggage`` header made of
the W3C baggage's own members plus the trace's DSC (see :mod:`._dsc`). The header replaces the one
the ``baggage`` propagator wrote, which it contains.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.context import Context, get_current, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ._dsc import (
    INCOMING_KEY,
    IncomingTrace,
    dsc_for_span_context,
    fill_sample_rand,
    otel_baggage_members,
    parse_baggage,
    serialize_dsc,
)

logger = logging.getLogger("otel_sentry")

SENTRY_TRACE_HEADER = "sentry-trace"
BAGGAGE_HEADER = "baggage"
DEFAULT_PROPAGATORS = "tracecontext,baggage,sentry"
# sentry-sdk's SENTRY_TRACE_REGEX; the ids must be there to continue a trace.
_SENTRY_TRACE = re.compile(r"^[ \t]*([0-9a-f]{32})-([0-9a-f]{16})(?:-([01]))?[ \t]*$")
_MAX_BAGGAGE_BYTES = 8192  # W3C baggage limit


def parse_sentry_trace(header: Optional[str]) -> Optional[tuple[int, int, Optional[bool]]]:
    """(trace id, parent span id, sampled or None when deferred), or None when invalid."""
    if not header:
        return None
    # several headers folded into one: the first non-empty one (as sentry-sdk)
    header = next((part.strip() for part in header.split(",") if part.strip()), "")
    match = _SENTRY_TRACE.match(header)
    if not match:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    flag = match.group(3)
    return trace_id, span_id, None if flag is None else flag == "1"


def _first(values: Optional[Any]) -> Optional[str]:
    if not values:
        return None
    if isinstance(values, str):
        return values
    return str(next(iter(values), "")) or None


class SentryPropagator(TextMapPropagator):
    """Continue and propagate traces in Sentry's format; see the module docstring."""

    def extract(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        ctx = context if context is not None else get_current()
        current = trace.get_current_span(ctx).get_span_context()
        w3c = current if current.is_valid and current.is_remote else None
        parsed = parse_sentry_trace(_first(getter.get(carrier, SENTRY_TRACE_HEADER)))
        if parsed is not None and w3c is not None and w3c.trace_id != parsed[0]:
            parsed = None
        if parsed is not None:
            trace_id, span_id, sampled = parsed
            if w3c is None:
                span_context = SpanContext(
                    trace_id,
                    span_id,
                    is_remote=True,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
                )
                ctx = trace.set_span_in_context(NonRecordingSpan(span_context), ctx)
        elif w3c is not None:
            trace_id, sampled = w3c.trace_id, w3c.trace_flags.sampled
        else:
            return ctx
        dsc, _others = parse_baggage(getter.get(carrier, BAGGAGE_HEADER))
        if dsc.get("trace_id") not in (None, f"{trace_id:032x}"):
            dsc = {}  # a DSC of another trace (stale baggage) is not this trace's
        if dsc:
            fill_sample_rand(dsc, trace_id, sampled)
        return set_value(INCOMING_KEY, IncomingTrace(trace_id, sampled, dsc), ctx)

    def inject(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        ctx = context if context is not None else get_current()
        span_context = trace.get_current_span(ctx).get_span_context()
        if not span_context.is_valid:
            return
        sampled = "1" if span_context.trace_flags.sampled else "0"
        setter.set(
            carrier,
            SENTRY_TRACE_HEADER,
            f"{span_context.trace_id:032x}-{span_context.span_id:016x}-{sampled}",
        )
        sentry_members = serialize_dsc(dsc_for_span_context(span_context, ctx))
        members = otel_baggage_members(ctx)
        header = ",".join([sentry_members, *members])
        while members and len(header.encode()) > _MAX_BAGGAGE_BYTES:
            members.pop()  # Sentry's items first: they are what this propagator is for
            header = ",".join([sentry_members, *members])
        setter.set(carrier, BAGGAGE_HEADER, header)

    @property
    def fields(self) -> set[str]:
        return {SENTRY_TRACE_HEADER, BAGGAGE_HEADER}


def install_global_propagators(environ: Optional[Mapping[str, str]] = None) -> list[str]:
    """Set the global propagator from ``OTEL_PROPAGATORS`` (names of ``opentelemetry_propagator``
    entry points); returns the names installed.

    ``opentelemetry.propagate`` reads the variable once, when first imported, which can be before
    the distro set its default (an app importing an instrumentation before ``configure()``); it
    raises on an unknown name; and it takes the first entry point of a name, while sentry-sdk also
    registers one named ``sentry``. Here an unknown name is one warning line and is skipped, and
    ``sentry`` is otel_sentry's propagator.
    """
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.util._importlib_metadata import entry_points

    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get("OTEL_PROPAGATORS", DEFAULT_PROPAGATORS).split(",") if n.strip()]
    if any(n.lower() == "none" for n in names):
        propagate.set_global_textmap(CompositePropagator([]))
        return []
    propagators: list[TextMapPropagator] = []
    installed: list[str] = []
    for name in names:
        found = list(entry_points(group="opentelemetry_propagator", name=name))
        if not found:
            available = sorted({ep.name for ep in entry_points(group="opentelemetry_propagator")})
            logger.warning(
                "otel_sentry: invalid OTEL_PROPAGATORS entry %r: unknown propagator (installed: %s); "
                "ignoring it",
                name,
                ", ".join(available),
            )
            continue
        # sentry-sdk registers a `sentry` propagator too (it only works with sentry-sdk's own
        # OpenTelemetry span processor): the name means ours here.
        ours = [ep for ep in found if ep.value.startswith("otel_sentry.")]
        try:
            propagators.append((ours or found)[0].load()())
        except Exception as exc:
            logger.warning(
                "otel_sentry: invalid OTEL_PROPAGATORS entry %r: failed to load (%s); ignoring it",
                name,
                exc,
            )
            continue
        installed.append(name)
    propagate.set_global_textmap(CompositePropagator(propagators))
    return installed
