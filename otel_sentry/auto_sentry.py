"""Drop-in for the seeds' ``src/utils/auto_sentry``: port with one import line.

from otel_sentry.auto_sentry import auto_capture_errors
"""

from __future__ import annotations

from ._decorator import auto_capture_errors

__all__ = ["auto_capture_errors"]
