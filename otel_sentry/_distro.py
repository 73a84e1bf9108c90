"""The distro: environment defaults that make ``opentelemetry-instrument`` work out of the box, and
the arguments it gives the instrumentors."""

from __future__ import annotations

import contextlib
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from ._configure import apply_environment_defaults
from ._failsafe import internal_error

# Instrumentors whose ASGI middleware takes ``exclude_spans`` (no environment variable exists for it).
_ASGI_INSTRUMENTORS = frozenset({"fastapi"})


class OtelSentryDistro(BaseDistro):  # type: ignore[misc]
    """Sets defaults; the configurator builds the pipeline."""

    def _configure(self, **kwargs: Any) -> None:
        apply_environment_defaults()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if str(getattr(entry_point, "name", "")).startswith("otel_sentry") and _already_instrumented(
            entry_point
        ):
            return  # configure() installed it first: no "Attempting to instrument while already instrumented"
        if getattr(entry_point, "name", None) == "logging":
            kwargs = {**_logging_arguments(), **kwargs}
        if getattr(entry_point, "name", None) in _ASGI_INSTRUMENTORS:
            # never stop an instrumentation from loading: on any error, instrument as stock does
            with contextlib.suppress(Exception):
                kwargs = {**_asgi_arguments(), **kwargs}
            try:
                _gate_middleware(entry_point.name)
            except Exception:
                internal_error("installing the sampling gate")
        super().load_instrumentor(entry_point, **kwargs)


def _already_instrumented(entry_point: Any) -> bool:
    try:
        return bool(entry_point.load()()._is_instrumented_by_opentelemetry)
    except Exception:
        return False


def _logging_arguments() -> dict[str, Any]:
    """The host's logging is the host's: OpenTelemetry's logging instrumentation attaches its bridge
    to the root logger by default, which silences Python's last-resort stderr output (asyncio's
    "Unclosed client session" and every unhandled warning) even when no logs exporter would receive
    what it collects. Only with a logs exporter is it attached (or when the user says so with
    ``OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION``)."""
    import os

    if os.environ.get("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", "").strip():
        return {}
    names = [n.strip() for n in os.environ.get("OTEL_LOGS_EXPORTER", "").split(",")]
    return {"enable_log_auto_instrumentation": any(n and n != "none" for n in names)}


def _asgi_arguments() -> dict[str, Any]:
    """What the ASGI instrumentation is given: no send/receive spans (from settings)."""
    from ._configure import current_settings

    if current_settings().asgi_send_receive_spans:
        return {}
    return {"exclude_spans": ["receive", "send"]}


def _gate_middleware(name: str) -> None:
    """Requests the sampler drops skip the instrumentation's middleware (otel_sentry._sampling_gate)."""
    import importlib

    from ._configure import current_settings, metrics_unread
    from ._sampling_gate import configure_gate, install, untraced_patterns

    settings = current_settings()
    patterns = untraced_patterns() if settings.bypass_untraced_routes else ()
    configure_gate(patterns, settings.bypass_unsampled_requests, measure=not metrics_unread())
    install(importlib.import_module(f"opentelemetry.instrumentation.{name}"))
