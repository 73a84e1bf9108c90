"""The configurator ``opentelemetry-instrument`` calls: the same code path as ``configure()``."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk._configuration import _BaseConfigurator

from ._configure import configure_pipeline


class OtelSentryConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        configure_pipeline(auto_instrumentation_version=kwargs.get("auto_instrumentation_version"))
