"""Drop-in for the seeds' ``src/utils/sentry_context``: port with one import line.

    from otel_sentry.sentry_context import capture_payment_error, capture_provider_error

Same names, parameters and defaults; each returns the Sentry event id (None when otel_sentry is not
configured or the exception was already reported).
"""

from __future__ import annotations

from ._helpers import (
    capture_auth_error,
    capture_cache_error,
    capture_database_error,
    capture_error,
    capture_model_health_error,
    capture_payment_error,
    capture_provider_error,
)

__all__ = [
    "capture_auth_error",
    "capture_cache_error",
    "capture_database_error",
    "capture_error",
    "capture_model_health_error",
    "capture_payment_error",
    "capture_provider_error",
]
