"""Requests the sampler drops skip OpenTelemetry's ASGI server middleware.

An unsampled request's span records nothing, yet the instrumentation's middleware still collects its
request attributes, matches its route, starts and ends that span, wraps ``send`` and records its
metrics: most of what an instrumented request costs, spent on requests that nine times out of ten
nobody receives. The gate asks the otel_sentry sampler first, with what the middleware would give it
(the extracted parent, the route template, the path), and when the answer is "drop" runs the app
under the non-recording span the SDK would have made (same trace id and tracestate, the incoming
baggage), so that what the app calls continues the trace unsampled and downstream services are told
"not sampled". Errors are still events: capture does not depend on spans.

When the request goes on to the middleware, the sampler is told that this request was already
decided and counted (:data:`._sampler.decided_by_gate`): it does not count it twice, and a head decision keeps
the ``sample_rand`` the gate drew, so the span agrees with the gate.

Two kinds of requests are gated:

* routes the rules never trace (the leading rate-0 rules, ``/health*`` and ``/metrics*`` by
  default), whenever ``OTEL_SENTRY_BYPASS_UNTRACED_ROUTES`` is on; without an incoming trace they
  are not even sampled, a fresh unsampled context is all they need;
* any request the sampler drops, when ``OTEL_SENTRY_BYPASS_UNSAMPLED_REQUESTS`` is on.

With a metrics exporter, a bypassed request still records the instrumentation's ``http.server``
metrics, as the middleware would have (:mod:`._gate_metrics`).

Never gated: another sampler, a server or client request hook (the middleware calls them for every
request), a response propagator, the user's excluded URLs (the middleware's own pass-through), a
request already inside a span, or suppressed instrumentation.

Written by hand because OpenTelemetry has no hook between "extract the parent" and "start the span":
the middleware always builds the span's inputs first. The subclass replaces the middleware in the
instrumentation modules the distro loads (:func:`install`), never for other users of the class.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware, asgi_getter, get_host_port_url_tuple
from opentelemetry.instrumentation.propagators import get_global_response_propagator  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from ._dsc import derived_sample_rand
from ._failsafe import internal_error
from ._gate_metrics import BypassMeasurement
from ._sampler import Decided, OtelSentrySampler, decided_by_gate


@dataclass(frozen=True)
class GatePolicy:
    """Which requests skip the middleware; fixed when the instrumentation is loaded."""

    untraced_paths: Optional[re.Pattern[str]]
    drop_unsampled: bool
    measure: bool  # a metrics exporter reads the instrumentation's http.server metrics

    @classmethod
    def from_patterns(cls, patterns: tuple[str, ...], drop_unsampled: bool, measure: bool) -> GatePolicy:
        regex = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
        return cls(regex, drop_unsampled, measure)


_policy: Optional[GatePolicy] = None
_DETAILS_KEPT = 2048
_ids = RandomIdGenerator()
_fields: tuple[Optional[TextMapPropagator], frozenset[bytes]] = (None, frozenset())


def _ours(holder: Any) -> Optional[OtelSentrySampler]:
    """The otel_sentry sampler of a tracer or tracer provider (also under the failsafe guard)."""
    sampler = getattr(holder, "sampler", None)
    sampler = getattr(sampler, "sampler", sampler)
    return sampler if isinstance(sampler, OtelSentrySampler) else None


def _propagation_headers() -> frozenset[bytes]:
    """The header names the global propagator reads (ASGI header names are lower-case bytes)."""
    global _fields
    propagator = propagate.get_global_textmap()
    if _fields[0] is not propagator:
        _fields = (propagator, frozenset(f.lower().encode("latin-1") for f in propagator.fields))
    return _fields[1]


class GatedMiddleware(OpenTelemetryMiddleware):  # type: ignore[misc]
    """OpenTelemetry's ASGI middleware, skipped for requests the otel_sentry sampler drops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._details: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
        # the middleware's own lookup goes through the same memory (sampled and measured requests)
        self._find_details = self.default_span_details
        self.default_span_details = self._span_details
        self._measurement = BypassMeasurement(self, self._span_details)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        policy = _policy
        if policy is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            unsampled = self._unsampled_context(policy, scope)
        except Exception:
            internal_error("deciding whether to sample a request")
            decided_by_gate.set(None)
            unsampled = None
        if unsampled is None:
            try:
                await super().__call__(scope, receive, send)
            finally:
                decided_by_gate.set(None)  # in case the middleware never started the span
            return
        token = otel_context.attach(unsampled)
        try:
            if policy.measure:
                await self._measurement.run(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)

    def _span_details(self, scope: Any) -> tuple[str, dict[str, Any]]:
        """The instrumentation's span name and route for this request, remembered per path: finding
        the route matches the request against every route of the app, half of the gate's cost.
        Everything that routing reads is in the key (Host routes read the host header)."""
        host = next((value for name, value in scope.get("headers") or () if name == b"host"), b"")
        routes = getattr(scope.get("app"), "routes", None)
        key = (
            scope["type"],
            scope.get("method"),
            scope.get("root_path"),
            scope.get("path"),
            host,
            len(routes or ()),
        )
        cache = self._details
        details = cache.get(key)
        if details is None:
            details = self._find_details(scope)
            if len(cache) >= _DETAILS_KEPT:  # paths with ids in them: bounded, cheap to refill
                cache.clear()
            cache[key] = details
        return details[0], dict(details[1])

    def _unsampled_context(self, policy: GatePolicy, scope: Any) -> Optional[otel_context.Context]:
        """The context to run an unsampled request in; None to hand the request to the middleware."""
        sampler = _ours(self.tracer)
        if (
            sampler is None
            or self.server_request_hook is not None
            or self.client_request_hook is not None
            or self.client_response_hook is not None
            or trace.get_current_span() is not trace.INVALID_SPAN
            or not is_http_instrumentation_enabled()
            or not getattr(self.tracer, "_is_enabled", bool)()  # the SDK's tracer configurator
            or get_global_response_propagator() is not None  # type: ignore[no-untyped-call]
        ):
            return None
        path = scope.get("path") or ""
        untraced = policy.untraced_paths is not None and policy.untraced_paths.match(path) is not None
        if not untraced and (
            not policy.drop_unsampled
            or sampler.record_unsampled  # tail promotion records every request: nothing is dropped
            or sampler.environment in sampler.rules.full_sampling_environments  # nor here
        ):
            return None
        excluded = self.excluded_urls  # the user's: the middleware passes those through untouched
        if (
            excluded is not None
            and getattr(excluded, "_excluded_urls", True)  # an empty list matches nothing
            and excluded.url_disabled(get_host_port_url_tuple(scope)[2])  # type: ignore[no-untyped-call]
        ):
            return None
        names = _propagation_headers()
        incoming = any(name in names for name, _ in scope.get("headers") or ())
        parent_context = propagate.extract(scope, getter=asgi_getter) if incoming else otel_context.Context()
        parent = trace.get_current_span(parent_context).get_span_context()
        ids = getattr(self.tracer, "id_generator", _ids)  # the SDK's tracer holds it
        # the flags the SDK gives an unsampled span: W3C's random-trace-id flag, as the ids were made
        flags = TraceFlags(
            TraceFlags.RANDOM_TRACE_ID
            if (parent.trace_flags.random_trace_id if parent.is_valid else ids.is_trace_id_random())
            else TraceFlags.DEFAULT
        )
        if untraced and not parent.is_valid:  # nothing to continue, nothing to decide
            fresh = SpanContext(ids.generate_trace_id(), ids.generate_span_id(), False, flags)
            return trace.set_span_in_context(NonRecordingSpan(fresh), parent_context)
        name, attributes = self._span_details(scope)
        if path:
            attributes["url.path"] = path
        trace_id = parent.trace_id if parent.is_valid else ids.generate_trace_id()
        result = sampler.should_sample(parent_context, trace_id, name, SpanKind.SERVER, attributes)
        if result.decision is Decision.DROP:
            span_context = SpanContext(
                trace_id, ids.generate_span_id(), False, flags, trace_state=result.trace_state
            )
            return trace.set_span_in_context(NonRecordingSpan(span_context), parent_context)
        decided_by_gate.set(Decided(None if parent.is_valid else derived_sample_rand(trace_id)))
        return None


# FastAPI's native telemetry stays out of the way of contrib's middleware, which it recognizes by the
# class's module and name: the gated one must be recognized too, or each request gets two server spans.
GatedMiddleware.__module__ = OpenTelemetryMiddleware.__module__
GatedMiddleware.__name__ = GatedMiddleware.__qualname__ = OpenTelemetryMiddleware.__name__


def untraced_patterns() -> tuple[str, ...]:
    """The globs of routes never traced under the active otel_sentry sampler (none under another)."""
    sampler = _ours(trace.get_tracer_provider())
    return sampler.rules.untraced_path_patterns(sampler.environment) if sampler is not None else ()


def configure_gate(untraced_patterns: tuple[str, ...], drop_unsampled: bool, measure: bool = False) -> None:
    """Set which requests the gate lets skip the middleware (None of them when both are off), and
    whether it records their ``http.server`` metrics."""
    global _policy
    gated = untraced_patterns or drop_unsampled
    _policy = GatePolicy.from_patterns(untraced_patterns, drop_unsampled, measure) if gated else None


def install(module: Any) -> None:
    """Make an instrumentation module build the gated middleware (it looks the class up per app)."""
    if getattr(module, "OpenTelemetryMiddleware", None) is OpenTelemetryMiddleware:
        module.OpenTelemetryMiddleware = GatedMiddleware
