"""The distro: environment defaults that make ``opentelemetry-instrument`` work out of the box."""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from ._configure import apply_environment_defaults


class OtelSentryDistro(BaseDistro):  # type: ignore[misc]
    """Sets defaults only; the configurator builds the pipeline."""

    def _configure(self, **kwargs: Any) -> None:
        apply_environment_defaults()
