"""Sentry-grade error tracking on vendor-neutral OpenTelemetry.

Zero code: ``pip install otel-sentry`` and run the app under ``opentelemetry-instrument``. Apps that are
not launched that way call :func:`configure` once at startup; both go through the same code path.

For explicit captures, the seeds' seven ``capture_*_error`` helpers and ``@auto_capture_errors`` are
here too (and in ``otel_sentry.sentry_context`` / ``otel_sentry.auto_sentry``, which mirror the seeds'
module names so existing code ports by changing one import line); see docs/capture-api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ._settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from ._decorator import auto_capture_errors
    from ._helpers import (
        capture_auth_error,
        capture_cache_error,
        capture_database_error,
        capture_error,
        capture_model_health_error,
        capture_payment_error,
        capture_provider_error,
    )

# Imported on first use, so that ``import otel_sentry`` (done by the distro entry point) stays cheap.
_LAZY = {
    "auto_capture_errors": "._decorator",
    "capture_auth_error": "._helpers",
    "capture_cache_error": "._helpers",
    "capture_database_error": "._helpers",
    "capture_error": "._helpers",
    "capture_model_health_error": "._helpers",
    "capture_payment_error": "._helpers",
    "capture_provider_error": "._helpers",
}

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Settings",
    "__version__",
    "auto_capture_errors",
    "capture_auth_error",
    "capture_cache_error",
    "capture_database_error",
    "capture_error",
    "capture_model_health_error",
    "capture_payment_error",
    "capture_provider_error",
    "configure",
    "flush",
]


def configure(**settings: Any) -> None:
    """Build the OpenTelemetry pipeline with the Sentry bridge, as ``opentelemetry-instrument`` would.

    Keyword arguments override the environment and use the field names of :class:`Settings`
    (``dsn``, ``environment``, ``release``, ...). Call it once, before the app serves requests.
    """
    from ._configure import configure_pipeline

    configure_pipeline(**settings)


def flush(timeout: float = 2.0) -> bool:
    """Wait until queued Sentry envelopes are delivered; True when nothing is left."""
    from ._runtime import get_runtime

    runtime: Optional[Any] = get_runtime()
    return True if runtime is None else bool(runtime.flush(timeout))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_sentry' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
