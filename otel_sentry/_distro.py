"""The distro: environment defaults that make ``opentelemetry-instrument`` work out of the box, and
the arguments it gives the instrumentors."""

from __future__ import annotations

import contextlib
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from ._configure import apply_environment_defaults

# Instrumentors whose ASGI middleware takes ``exclude_spans`` (no environment variable exists for it).
_ASGI_INSTRUMENTORS = frozenset({"fastapi"})


class OtelSentryDistro(BaseDistro):  # type: ignore[misc]
    """Sets defaults; the configurator builds the pipeline."""

    def _configure(self, **kwargs: Any) -> None:
        apply_environment_defaults()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if getattr(entry_point, "name", None) in _ASGI_INSTRUMENTORS:
            # never stop an instrumentation from loading: on any error, instrument as stock does
            with contextlib.suppress(Exception):
                kwargs = {**_asgi_arguments(), **kwargs}
        super().load_instrumentor(entry_point, **kwargs)


def _asgi_arguments() -> dict[str, Any]:
    """What the ASGI instrumentation is given: no send/receive spans, and untraced routes skipped
    (otel_sentry._untraced); both from settings."""
    from ._configure import current_settings
    from ._untraced import bypass, untraced_patterns

    settings = current_settings()
    arguments: dict[str, Any] = {}
    if not settings.asgi_send_receive_spans:
        arguments["exclude_spans"] = ["receive", "send"]
    patterns = untraced_patterns() if settings.bypass_untraced_routes else ()
    if patterns:
        arguments["excluded_urls"] = bypass(patterns)
    return arguments
