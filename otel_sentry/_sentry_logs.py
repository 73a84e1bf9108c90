"""Python log records as Sentry log items, the way sentry-sdk's logging integration sends them.

With ``sentry`` in ``OTEL_LOGS_EXPORTER``, OpenTelemetry's logging bridge alone would give Sentry a
poorer item than sentry-sdk does: no ``logger.name``, no message template and parameters, no thread or
process, and nothing at all from loggers that do not propagate to the root (uvicorn's error and access
loggers), because the bridge sits on the root logger. So, like sentry-sdk, the records are taken
where every logger hands them out (``_logging``'s ``Logger.callHandlers`` wrapper) and turned into
the attributes sentry-sdk's ``_capture_log_from_record`` writes (``sentry.origin=auto.log.stdlib``,
``logger.name``, ``sentry.message.template``, ``sentry.message.parameter.N``, ``code.*``,
``thread.*``, ``process.*`` and the record's extras). They go through a private OpenTelemetry logs
pipeline (a batch processor in front of the ``sentry`` exporter), never the global one, so other
backends see exactly what OpenTelemetry's bridge gives them. The ``sentry`` exporter of the global
pipeline then skips the bridge's copy of each record sent here (matched by logger name and
timestamp; bounded), and still exports what the OpenTelemetry logs API emits directly.

Records of otel_sentry, sentry-sdk, urllib3 and OpenTelemetry are not sent (as sentry-sdk ignores its
own); the level threshold is sentry-sdk's default, INFO.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Any, Optional

from . import _sanitize

LEVEL = logging.INFO
_IGNORED = ("otel_sentry", "sentry_sdk", "urllib3", "opentelemetry")
# LogRecord attributes that are not extras (sentry-sdk's COMMON_RECORD_ATTRS, plus what OTel adds)
_COMMON = frozenset(
    (
        "args",
        "created",
        "exc_info",
        "exc_text",
        "filename",
        "funcName",
        "levelname",
        "levelno",
        "linenno",
        "lineno",
        "message",
        "module",
        "msecs",
        "msg",
        "name",
        "pathname",
        "process",
        "processName",
        "relativeCreated",
        "stack",
        "tags",
        "taskName",
        "thread",
        "threadName",
        "stack_info",
        "otelSpanID",
        "otelTraceID",
        "otelTraceSampled",
        "otelServiceName",
        "color_message",
    )
)
_MAX_SENT = 16384

_lock = threading.Lock()
_provider: Optional[Any] = None
_sent: OrderedDict[tuple[str, int], None] = OrderedDict()
#: paths under it are sent relative to it, as sentry-sdk does with its ``project_root`` (the working
#: directory at start-up)
_project_root: Optional[str] = None


def _parameter(value: Any) -> Any:
    return value if isinstance(value, (str, float, int, bool)) else _sanitize.safe_repr(value)


def attributes(record: logging.LogRecord) -> dict[str, Any]:
    """The attributes sentry-sdk's logging integration gives this record's log item."""
    attrs: dict[str, Any] = {
        k: v
        for k, v in vars(record).items()
        if k not in _COMMON and not (isinstance(k, str) and k.startswith("_"))
    }
    attrs["sentry.origin"] = "auto.log.stdlib"
    parameters = False
    if isinstance(record.args, tuple):
        parameters = bool(record.args)
        for i, arg in enumerate(record.args):
            attrs[f"sentry.message.parameter.{i}"] = _parameter(arg)
    elif isinstance(record.args, dict):
        parameters = bool(record.args)
        for key, value in record.args.items():
            attrs[f"sentry.message.parameter.{key}"] = _parameter(value)
    if parameters and isinstance(record.msg, str):
        attrs["sentry.message.template"] = record.msg
    if record.lineno:
        attrs["code.line.number"] = record.lineno
    if record.pathname:
        root = _project_root
        inside = root is not None and record.pathname.startswith(root + os.sep)
        attrs["code.file.path"] = record.pathname[len(root) + 1 :] if inside and root else record.pathname
    if record.funcName:
        attrs["code.function.name"] = record.funcName
    if record.thread:
        attrs["thread.id"] = record.thread
    if record.threadName:
        attrs["thread.name"] = record.threadName
    if record.process:
        attrs["process.pid"] = record.process
    if record.processName:
        attrs["process.executable.name"] = record.processName
    if record.name:
        attrs["logger.name"] = record.name
    return attrs


def enable(runtime: Any) -> None:
    """Start the private pipeline (idempotent): a batch processor in front of the ``sentry`` exporter."""
    global _provider, _project_root
    with _lock:
        if _provider is not None:
            return
        _project_root = os.getcwd()
        from opentelemetry._logs import get_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        from ._log_exporter import SentryLogExporter
        from ._request_secrets import RedactingLogExporter
        from ._scrubbing_signals import ScrubbingLogExporter

        # the service's resource (service.name, ...), as the global pipeline's items carry it
        resource = getattr(get_logger_provider(), "resource", None)
        provider = LoggerProvider(resource=resource) if resource is not None else LoggerProvider()
        # the one scrubber and the request's own secrets, as in front of every other log exporter
        exporter = RedactingLogExporter(ScrubbingLogExporter(SentryLogExporter(runtime, direct=True)))
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        _provider = provider


def private_provider() -> Any:
    """The private pipeline's logger provider, when it runs (walked by _scrubbing_signals too)."""
    return _provider


def disable() -> None:
    global _provider
    with _lock:
        provider, _provider = _provider, None
        _sent.clear()
    if provider is not None:
        provider.shutdown()


def flush(timeout_millis: int = 2000) -> None:
    provider = _provider
    if provider is not None:
        provider.force_flush(timeout_millis)


def capture(record: logging.LogRecord) -> None:
    """Called for every record a logger hands out; sends it when enabled and not ours."""
    provider = _provider
    if provider is None or record.levelno < LEVEL or record.name.startswith(_IGNORED):
        return
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.context import get_current

    from ._logging import _message

    timestamp = int(record.created * 1e9)
    number = _severity(record.levelno)
    provider.get_logger(record.name).emit(
        LogRecord(
            timestamp=timestamp,
            context=get_current(),  # the trace and span it was logged in
            severity_number=SeverityNumber(number),
            severity_text=record.levelname,
            body=_message(record),
            attributes=attributes(record),
        )
    )
    with _lock:
        _sent[record.name, timestamp] = None
        while len(_sent) > _MAX_SENT:
            _sent.popitem(last=False)


def sent_already(scope_name: Optional[str], timestamp: Optional[int]) -> bool:
    """True for the OpenTelemetry bridge's copy of a record this module sent (the global ``sentry``
    exporter skips it)."""
    if _provider is None or scope_name is None or timestamp is None:
        return False
    return (scope_name, timestamp) in _sent


def _severity(levelno: int) -> int:
    """sentry-sdk's mapping of logging levels to OpenTelemetry severity numbers."""
    for threshold, number in ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5)):
        if levelno >= threshold:
            return number
    return 1
