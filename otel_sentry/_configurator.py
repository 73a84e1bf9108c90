"""The configurator ``opentelemetry-instrument`` calls: the same code path as ``configure()``."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.sdk._configuration import _BaseConfigurator

from ._configure import configure_pipeline
from ._settings import ConfigurationError


class OtelSentryConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        try:
            configure_pipeline(auto_instrumentation_version=kwargs.get("auto_instrumentation_version"))
        except ConfigurationError as exc:
            # Strict mode asked for a failed start. opentelemetry-instrument would log any exception
            # from here and run the app untraced, and SystemExit inside sitecustomize is a "Fatal
            # Python error": say why, then end the process with EX_CONFIG before the app starts.
            logging.getLogger("otel_sentry").error("%s; not starting (OTEL_SENTRY_STRICT is on)", exc)
            logging.shutdown()
            os._exit(78)
