"""Our own warnings reach the operator even though our logging handler sits on the root logger.

Python prints an unhandled WARNING through ``logging.lastResort`` only when no handler at all is
found up the logger chain. Telemetry handlers on the root logger (our logging integration in
``_logging.py``, the OpenTelemetry SDK's ``LoggingHandler``, sentry-sdk's) count as found although
they print nothing, so in an app that never configured logging (uvicorn configures only its own
loggers) every ``otel_sentry`` warning - a bad setting, a dropped envelope, a rejected DSN - would
vanish. This handler restores the standard behaviour as if those handlers were not there: it prints
through ``lastResort`` only when no other handler would take the record.
"""

from __future__ import annotations

import logging

_LOGGER = "otel_sentry"


_TELEMETRY_MODULES = ("otel_sentry.", "opentelemetry.", "sentry_sdk.")


def _prints_nothing(handler: logging.Handler) -> bool:
    return isinstance(handler, LastResort) or type(handler).__module__.startswith(_TELEMETRY_MODULES)


class LastResort(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        current: logging.Logger | None = logging.getLogger(record.name)
        while current is not None:
            for handler in current.handlers:
                if not _prints_nothing(handler) and record.levelno >= handler.level:
                    return  # someone else prints it
            if not current.propagate:
                break
            current = current.parent
        last = logging.lastResort
        if last is not None and record.levelno >= last.level:
            last.handle(record)


def install() -> None:
    """Idempotent; touches only the ``otel_sentry`` logger."""
    logger = logging.getLogger(_LOGGER)
    if not any(isinstance(h, LastResort) for h in logger.handlers):
        logger.addHandler(LastResort())
