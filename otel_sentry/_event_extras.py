"""Event fields sentry-sdk users rely on: ``sdk.integrations``, ``modules``, ``contexts.trace.origin``.

* ``sdk.integrations``: what otel_sentry has active in this process (its capture hooks, and the
  OpenTelemetry instrumentations that are instrumenting), so "which integrations were on" can be
  answered from any event, as sentry-sdk answers it. Read once, at the first event: hooks and
  instrumentations are installed at startup, before the first request.
* ``modules``: the installed distributions and their versions, on error events as sentry-sdk's
  ``ModulesIntegration`` puts them (not on transactions). sentry-sdk's own list is reused (it is
  computed once per process and cached by sentry-sdk).
* ``contexts.trace.origin``: what made the span the event belongs to (``auto.otel`` for spans from
  OpenTelemetry instrumentations, as on our transactions; ``manual`` without a span).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Optional

from ._transactions import ORIGIN

_lock = threading.Lock()
_integrations: Optional[list[str]] = None


def installed_modules() -> dict[str, str]:
    """Installed distributions -> version, as sentry-sdk sends them (its cached list)."""
    from sentry_sdk.utils import _get_installed_modules

    return dict(_get_installed_modules())


def _otel_instrumentations() -> list[str]:
    """Names of the OpenTelemetry instrumentors that are instrumenting now (only those already
    imported are looked at: an instrumentor that was never imported is not instrumenting)."""
    from opentelemetry.util._importlib_metadata import entry_points

    names: list[str] = []
    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        module_name, _, attr = entry_point.value.partition(":")
        module = sys.modules.get(module_name.strip())
        cls = getattr(module, attr.strip(), None) if module is not None else None
        instance = getattr(cls, "_instance", None)
        if instance is not None and getattr(instance, "_is_instrumented_by_opentelemetry", False):
            names.append(entry_point.name)
    return names


def active_integrations() -> list[str]:
    """otel_sentry's active capture hooks and OTel instrumentations, sorted, computed once."""
    global _integrations
    if _integrations is not None:
        return _integrations
    with _lock:
        if _integrations is None:
            _integrations = _compute_integrations()
    return _integrations


def _compute_integrations() -> list[str]:
    from . import _background, _logging, _sentry_sdk_interop
    from ._runtime import get_runtime

    names = {"modules", "dedupe"}  # both always on: modules below, one exception -> one event
    if _background._installed:
        names.update(("threading", "asyncio", "concurrent_futures"))
    if _logging._handler is not None:
        names.add("logging")
    if _sentry_sdk_interop._installed:
        names.add("sentry_sdk")
    runtime = get_runtime()
    if runtime is not None and getattr(runtime, "sessions", None) is not None:
        names.add("release_health")
    if runtime is not None and getattr(runtime, "profiler", None) is not None:
        names.add("profiling")
    for name in _otel_instrumentations():
        if name.startswith("otel_sentry_"):  # our Starlette hooks cover FastAPI apps too
            names.update(("starlette", "fastapi") if name == "otel_sentry_starlette" else ())
        else:
            names.add(f"otel:{name}")
    return sorted(names)


def apply(event: dict[str, Any], *, error: bool) -> None:
    """Add the extras to an event about to be serialized (never changes shared dicts)."""
    sdk = event.get("sdk")
    if isinstance(sdk, dict) and "integrations" not in sdk:
        event["sdk"] = {**sdk, "integrations": active_integrations()}
    if not error:
        return
    trace = event.get("contexts", {}).get("trace")
    if isinstance(trace, dict) and "origin" not in trace:
        trace["origin"] = ORIGIN if trace.get("op") else "manual"
    event.setdefault("modules", installed_modules())


def reset() -> None:
    """Forget the integrations read so far (tests that install hooks after an event)."""
    global _integrations
    with _lock:
        _integrations = None
