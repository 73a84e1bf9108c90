"""Sentry-grade error tracking on vendor-neutral OpenTelemetry.

Zero code: ``pip install otel-sentry`` and run the app under ``opentelemetry-instrument``. Apps that are
not launched that way call :func:`configure` once at startup; both go through the same code path.
"""

from __future__ import annotations

from typing import Any, Optional

from ._settings import ConfigurationError, Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Settings",
    "__version__",
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
