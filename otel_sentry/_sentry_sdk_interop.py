"""Living with an app that also calls ``sentry_sdk.init`` (the seeds' app does).

Without this, every error would reach Sentry twice: once from sentry-sdk's own integrations and once
from otel_sentry. A global sentry-sdk event processor routes sentry-sdk's error events that carry a
live exception into otel_sentry's capture (which deduplicates per exception chain and adds the
request context), and drops sentry-sdk's transactions, which otel_sentry builds from OTel spans.
Messages (``capture_message``) pass through untouched.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from . import _capture
from ._runtime import get_runtime

logger = logging.getLogger("otel_sentry")

_installed = False
_told_about_transactions = False


def _route_through_otel_sentry(event: dict[str, Any], hint: dict[str, Any]) -> Optional[dict[str, Any]]:
    global _told_about_transactions
    runtime = get_runtime()
    if runtime is None or not runtime.settings.adopt_sentry_sdk:
        return event
    try:
        if event.get("type") == "transaction":
            runtime.counters["sentry_sdk.transaction_dropped"] += 1
            if not _told_about_transactions:
                _told_about_transactions = True
                logger.info(
                    "otel_sentry: dropping sentry-sdk's own transactions; otel_sentry sends them from "
                    "OpenTelemetry spans (set OTEL_SENTRY_ADOPT_SENTRY_SDK=false to keep both)"
                )
            return None
        exc_info = hint.get("exc_info") if hint else None
        if not exc_info or exc_info[1] is None:
            return event
        values = (event.get("exception") or {}).get("values") or [{}]
        mechanism = values[-1].get("mechanism") or {}
        _capture.capture(
            runtime,
            exc_info[1],
            exc_info[2],
            handled=bool(mechanism.get("handled", True)),
            mechanism=str(mechanism.get("type") or "sentry_sdk"),
            level=str(event.get("level") or "error"),
        )
        runtime.counters["sentry_sdk.error_adopted"] += 1
        return None
    except Exception:
        runtime.internal_error("adopting a sentry-sdk event")
        return event


def install() -> None:
    """Register the processor once per process; it is inert until a runtime exists."""
    global _installed
    if _installed:
        return
    # When the app imports sentry_sdk, not before: importing it costs tens of ms of start-up (its
    # package imports the whole client) in every process that never uses it. wrapt (a dependency of
    # opentelemetry-instrumentation) calls the hook at once if sentry_sdk is already imported.
    from wrapt import register_post_import_hook

    register_post_import_hook(_register_processor, "sentry_sdk.scope")
    _installed = True


def _register_processor(scope_module: Any) -> None:
    scope_module.add_global_event_processor(_route_through_otel_sentry)
