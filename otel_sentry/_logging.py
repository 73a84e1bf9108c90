"""Log records as Sentry events and breadcrumbs, as sentry-sdk's logging integration does.

A handler that sees every record a logger handles (installed by ``configure``; levels from
``OTEL_SENTRY_LOG_EVENT_LEVEL``, default ERROR, and ``OTEL_SENTRY_LOG_BREADCRUMB_LEVEL``, default INFO):

* a record at or above the event level with an exception (``logger.exception(...)``,
  ``logger.error(..., exc_info=True)``) is captured with the log message. So is one logged while an
  exception is being handled (inside ``except``): the audit's swallowed-error pattern
  ``except Exception as e: logger.error(f"...: {e}"); return None`` then carries its stack trace.
  These captures are *soft* (see ``_capture``): if the exception is then re-raised or wrapped
  (``raise HTTPException(500) from e``) and captured again in the same request, that one event
  replaces it and keeps the log message. One exception, one event;
* a record at or above the event level with no exception at all becomes a message event;
* records at or above the breadcrumb level become breadcrumbs of the request they were logged in
  (at most ``MAX_BREADCRUMBS``, the oldest dropped), attached to its later events.

Records of otel_sentry itself, sentry-sdk, urllib3 and OpenTelemetry are ignored (no loops). When
the app also runs sentry-sdk's own logging integration, its copies of these events are dropped.

Like sentry-sdk, the handler is called from a wrapper around ``Logger.callHandlers`` rather than
attached to the root logger: a root handler would make ``logging.basicConfig()`` a no-op, be removed
by a ``dictConfig`` that configures the root, silence Python's last-resort stderr output, and miss
loggers with ``propagate=False``.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections import deque
from typing import Any, Optional

from opentelemetry import trace

from . import _capture, _helpers, _sanitize, _sentry_logs
from ._runtime import Runtime, get_runtime
from ._transport import ERROR

logger = logging.getLogger("otel_sentry")

MAX_BREADCRUMBS = 100
IGNORED_PREFIXES = ("otel_sentry", "sentry_sdk", "urllib3", "opentelemetry")
LEVEL_NAMES = {
    logging.CRITICAL: "fatal",
    logging.ERROR: "error",
    logging.WARNING: "warning",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}
# LogRecord attributes that are not "extra" (as sentry-sdk), plus what other integrations inject.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "otelSpanID",
    "otelTraceID",
    "otelTraceSampled",
    "otelServiceName",
    "color_message",
}
_busy = threading.local()


def event_level_name(levelno: int) -> str:
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return LEVEL_NAMES[threshold]
    return "debug"


def _ignored(name: str) -> bool:
    return name.startswith(IGNORED_PREFIXES)


def _message(record: logging.LogRecord) -> str:
    """record.getMessage(), bounded: arguments whose __str__ hangs or raises cannot block us."""
    if isinstance(record.msg, str) and all(_sanitize.str_is_safe(a) for a in _args(record)):
        try:
            text = record.getMessage()
        except Exception:
            text = record.msg
        return _sanitize.message(text)
    return _sanitize.message(_LazyMessage(record))


def _mentions(text: str, exc: BaseException) -> bool:
    """True when the log message names the exception (its type, or its message)."""
    if type(exc).__name__ in text:
        return True
    from ._span_exceptions import exception_message

    message = exception_message(exc, _sanitize.safe_str)
    return bool(message) and message in text


class _LazyMessage:
    """Makes the guarded str() of _sanitize format the record on its helper thread."""

    __slots__ = ("record",)

    def __init__(self, record: logging.LogRecord) -> None:
        self.record = record

    def __str__(self) -> str:
        return self.record.getMessage()


def _args(record: logging.LogRecord) -> tuple[Any, ...]:
    args = record.args
    if isinstance(args, dict):
        return tuple(args.values())
    return tuple(args) if isinstance(args, tuple) else ()


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    if not extra:
        return {}
    data = _sanitize.data(extra, max_bytes=8 * 1024)
    return data if isinstance(data, dict) else {}


def breadcrumb(record: logging.LogRecord) -> dict[str, Any]:
    """The breadcrumb sentry-sdk's BreadcrumbHandler would make of this record."""
    crumb: dict[str, Any] = {
        "type": "log",
        "level": event_level_name(record.levelno),
        "category": _sanitize.cap(record.name, 200),
        "message": _message(record),
        "timestamp": record.created,
    }
    extra = _extra(record)
    if extra:
        crumb["data"] = extra
    return crumb


class SentryLoggingHandler(logging.Handler):
    """Events at ``event_level`` and above, breadcrumbs at ``breadcrumb_level`` and above."""

    def __init__(self, event_level: Optional[int], breadcrumb_level: Optional[int]) -> None:
        levels = [level for level in (event_level, breadcrumb_level) if level is not None]
        super().__init__(level=min(levels) if levels else logging.CRITICAL + 1)
        self.event_level = event_level
        self.breadcrumb_level = breadcrumb_level

    def emit(self, record: logging.LogRecord) -> None:
        if not _ignored(record.name) and not getattr(_busy, "active", False):
            runtime = get_runtime()
            if runtime is not None:
                _busy.active = True
                try:
                    self._handle(runtime, record)
                except Exception:
                    runtime.internal_error("turning a log record into an event")
                finally:
                    _busy.active = False

    def _handle(self, runtime: Runtime, record: logging.LogRecord) -> None:
        request = _capture.current_request()
        if self.event_level is not None and record.levelno >= self.event_level:
            self._event(runtime, record, request)
        if self.breadcrumb_level is not None and record.levelno >= self.breadcrumb_level and request:
            if request.breadcrumbs is None:
                request.breadcrumbs = deque(maxlen=MAX_BREADCRUMBS)
            request.breadcrumbs.append(breadcrumb(record))

    def _event(self, runtime: Runtime, record: logging.LogRecord, request: Any) -> None:
        exc: Optional[BaseException] = None
        tb = None
        text = _message(record)
        if isinstance(record.exc_info, tuple):
            exc, tb = record.exc_info[1], record.exc_info[2]  # the record's own, even if none
        elif record.exc_info is None and record.thread == threading.get_ident():
            # Logged inside an ``except`` block about the exception being handled (the audit's
            # ``except Exception as e: logger.error(f"...: {e}")``): that is the error. An unrelated
            # exception that merely happens to be in sys.exc_info() is not.
            exc = sys.exc_info()[1]
            if exc is not None and not _mentions(text, exc):
                exc = None
            tb = exc.__traceback__ if exc is not None else None
        entry = {"message": text if not isinstance(record.msg, str) else _sanitize.message(record.msg)}
        entry["formatted"] = text
        level = event_level_name(record.levelno)
        if isinstance(exc, Exception):
            _helpers.record(
                exc,
                helper="logging",
                category=None,
                context_name=None,
                context=None,
                tags={},
                level=level,
                handled=True,
                mechanism="logging",
                tb=tb,
                extra=_extra(record) or None,
                soft=True,
                span="current",
                logentry=entry,
                logger_name=record.name,
            )
        elif _capture.is_server_echo(record.name):
            runtime.counters["log_message.server_echo"] += 1
        else:
            _message_event(runtime, record, request, entry, level)


def _message_event(
    runtime: Runtime, record: logging.LogRecord, request: Any, entry: dict[str, Any], level: str
) -> None:
    """A Sentry message event (no exception), with the request's context when there is one."""
    from ._events import CapturedError, error_event

    span = trace.get_current_span()
    error = CapturedError(
        exception=_NoException(),
        values=[],
        handled=True,
        level=level,
        span_context=span.get_span_context(),
        timestamp=record.created,
        event_id=uuid.uuid4().hex,
        extra=_extra(record),
        logentry=entry,
        logger=record.name,
        breadcrumbs=list(request.breadcrumbs or ()) if request is not None else [],
    )
    facts = request.facts(runtime) if request is not None else None
    event = error_event(error, facts, runtime.defaults, send_default_pii=runtime.settings.send_default_pii)
    event.pop("exception", None)
    event.get("tags", {}).pop("exception_type", None)
    event.get("contexts", {}).pop("exception_context", None)
    if not _capture.hold_message(request, event):  # inside a request, its outcome decides
        runtime.submit(event, ERROR)


class _NoException(Exception):
    """Placeholder for a message event; never raised."""


# -- installation ---------------------------------------------------------------------------------

_handler: Optional[SentryLoggingHandler] = None
_sentry_sdk_filter_installed = False


def _drop_sentry_sdk_log_messages(event: dict[str, Any], hint: dict[str, Any]) -> Optional[dict[str, Any]]:
    """sentry-sdk's logging integration would send the same message events a second time."""
    if _handler is None or not hint or hint.get("log_record") is None or event.get("exception"):
        return event
    runtime = get_runtime()
    if runtime is not None:
        runtime.counters["sentry_sdk.log_message_dropped"] += 1
    return None


def _call_handlers_wrapper(original: Any) -> Any:
    def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:
        try:
            original(self, record)
        finally:
            handler = _handler
            if handler is not None and record.levelno >= handler.level:
                handler.handle(record)
            if _sentry_logs._provider is not None and not getattr(_busy, "active", False):
                _busy.active = True
                try:
                    _sentry_logs.capture(record)  # Sentry log items, as sentry-sdk's integration sends them
                except Exception:
                    runtime = get_runtime()
                    if runtime is not None:
                        runtime.internal_error("turning a log record into a Sentry log item")
                finally:
                    _busy.active = False

    callHandlers.__otel_sentry_original__ = original  # type: ignore[attr-defined]
    return callHandlers


def install(event_level: Optional[int], breadcrumb_level: Optional[int]) -> Optional[SentryLoggingHandler]:
    """Set (or replace) the handler; None (and no handler) when both levels are off."""
    global _handler, _sentry_sdk_filter_installed
    if event_level is None and breadcrumb_level is None:
        _handler = None
        return None
    _handler = SentryLoggingHandler(event_level, breadcrumb_level)
    wrap_call_handlers()
    if not _sentry_sdk_filter_installed:
        # once the app imports sentry_sdk (at once if it has): importing it here slows start-up
        from wrapt import register_post_import_hook

        register_post_import_hook(
            lambda scope: scope.add_global_event_processor(_drop_sentry_sdk_log_messages), "sentry_sdk.scope"
        )
        _sentry_sdk_filter_installed = True
    return _handler


def wrap_call_handlers() -> None:
    """Install the ``Logger.callHandlers`` wrapper (idempotent)."""
    current = logging.Logger.callHandlers
    if getattr(current, "__otel_sentry_original__", None) is None:
        logging.Logger.callHandlers = _call_handlers_wrapper(current)  # type: ignore[method-assign]


def uninstall() -> None:
    """Remove the handler and the ``callHandlers`` wrapper."""
    global _handler
    _handler = None
    original = getattr(logging.Logger.callHandlers, "__otel_sentry_original__", None)
    if original is not None:
        logging.Logger.callHandlers = original  # type: ignore[method-assign]
