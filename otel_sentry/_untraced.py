"""Routes the sampling rules never trace (the seeds' ``/health`` and ``/metrics``) skip the
instrumentation's middleware altogether.

A rate of 0 already means a non-recording span, but the ASGI middleware still collects request
attributes, matches the route, starts and ends that span and records metrics: the larger part of an
instrumented health check's cost. Its ``excluded_urls`` argument skips all of that; the distro passes
the rate-0 rules there (with the user's own excluded URLs), and the capture middleware gives each such
request an unsampled trace context of its own, so that what it calls is dropped by the parent-based
sampler instead of starting new root traces, and downstream services are told "not sampled". Errors
there are still captured: capture does not depend on spans.

Only the rate-0 rules ahead of every rule with a rate above 0 qualify (:meth:`Rules.untraced_path_patterns`),
only with the otel_sentry sampler, and never in a full-sampling environment.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

_ids = RandomIdGenerator()
_paths: Optional[re.Pattern[str]] = None


def untraced_patterns() -> tuple[str, ...]:
    """The globs of routes never traced under the active otel_sentry sampler (none under another)."""
    from ._sampler import OtelSentrySampler

    sampler = getattr(trace.get_tracer_provider(), "sampler", None)
    sampler = getattr(sampler, "sampler", sampler)  # under the failsafe guard
    if not isinstance(sampler, OtelSentrySampler):
        return ()
    return sampler.rules.untraced_path_patterns(sampler.environment)


def bypass(patterns: tuple[str, ...]) -> str:
    """Remember the untraced paths (for :func:`untraced_context`) and return the instrumentation's
    ``excluded_urls``: regexes searched in the request's full URL (scheme, host, path), the user's
    ``OTEL_PYTHON_*EXCLUDED_URLS`` first (the argument replaces them)."""
    global _paths
    _paths = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
    user = os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or os.environ.get(
        "OTEL_PYTHON_EXCLUDED_URLS", ""
    )
    ours = [f"^[^:/?#]+://[^/?#]*{fnmatch.translate(p)}" for p in patterns]
    return ",".join(part for part in (user.strip(), *ours) if part)


def untraced_context(scope: dict[str, Any]) -> Optional[Context]:
    """An unsampled trace context for a request the instrumentation skipped as untraced; None for any
    other request (traced, or skipped by the user's own exclusions)."""
    paths = _paths
    if paths is None or trace.get_current_span().get_span_context().is_valid:
        return None
    if not paths.match(scope.get("path", "")):  # as the instrumentation matches it (root_path included)
        return None
    context = SpanContext(
        _ids.generate_trace_id(), _ids.generate_span_id(), is_remote=False, trace_flags=TraceFlags(0)
    )
    return trace.set_span_in_context(NonRecordingSpan(context))
