"""The distro: environment defaults that make ``opentelemetry-instrument`` work out of the box, and
the arguments it gives the instrumentors."""

from __future__ import annotations

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
        if getattr(entry_point, "name", None) in _ASGI_INSTRUMENTORS and "exclude_spans" not in kwargs:
            try:
                from ._configure import current_settings

                if not current_settings().asgi_send_receive_spans:
                    kwargs["exclude_spans"] = ["receive", "send"]
            except Exception:  # a bad setting was reported by the loader; instrument as stock does
                pass
        super().load_instrumentor(entry_point, **kwargs)
