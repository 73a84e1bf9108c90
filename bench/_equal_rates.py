"""Stock OpenTelemetry sampling at otel_sentry's per-route rates: the fair peer for the side-by-side
configuration (issue 15: "stock lean at the same sampled share").

Stock's samplers give one ratio to every route; otel_sentry samples chat at 20%, health at 0 and the
rest at 10% (the seeds' rules). This sampler is what a stock user would write to get the same: a
parent-based sampler whose root decision is ``TraceIdRatioBased`` at the rate of the first rule
(otel_sentry's default table, matched as globs on ``http.route``, else the path) that matches.
Only the OpenTelemetry SDK is used to decide; otel_sentry's table is read as data.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Optional, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_sentry._rules import DEFAULT_SAMPLE_RATE, DEFAULT_SAMPLING


class RouteRatioSampler(Sampler):
    """Root spans: ``TraceIdRatioBased`` at the route's rate (per-route samplers made once)."""

    def __init__(
        self, rules: Sequence[tuple[str, float]] = DEFAULT_SAMPLING, default: float = DEFAULT_SAMPLE_RATE
    ) -> None:
        self._rules = tuple(rules)
        self._default = TraceIdRatioBased(default)
        self._by_rate: dict[float, TraceIdRatioBased] = {}
        self._by_route: dict[str, TraceIdRatioBased] = {}

    def _for(self, route: str) -> TraceIdRatioBased:
        sampler = self._by_route.get(route)
        if sampler is None:
            rate = next((r for pattern, r in self._rules if fnmatchcase(route, pattern)), None)
            sampler = (
                self._default if rate is None else self._by_rate.setdefault(rate, TraceIdRatioBased(rate))
            )
            if len(self._by_route) < 4096:
                self._by_route[route] = sampler
        return sampler

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
        attrs: Any = attributes or {}
        route = attrs.get("http.route") or attrs.get("url.path") or attrs.get("http.target") or ""
        return self._for(str(route)).should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "RouteRatioSampler{otel_sentry default rates}"


def install() -> None:
    """Replace the configured provider's sampler; tracers made afterwards (the app's) use it."""
    from opentelemetry import trace

    provider: Any = trace.get_tracer_provider()
    provider.sampler = ParentBased(RouteRatioSampler())
