"""The seeds' seven capture helpers (``src/utils/sentry_context.py``), on OpenTelemetry.

Same names, parameters and defaults, so code ports by changing one import line. Each helper records
the exception, handled, on the current span (on a short span of its own when there is none, so a
script or a worker still gets a real trace), with the category as span-event attributes, and sends
one Sentry event with the seeds' tags (``error_category``, ``operation``, ``provider``, ``model``,
``is_revenue_critical`` for payments) and the details as a context. Inside a request the event joins
the request's other captures and carries its context; outside, it goes out at once.

Whatever the arguments, a helper never raises into the caller and never sends more than Sentry
accepts: inputs go through ``_sanitize`` (bounded, JSON-safe, scrubbed), and a bad input produces at
most one warning line per kind of problem.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Optional

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import _capture, _sanitize
from ._runtime import Runtime, get_runtime
from ._span_exceptions import exception_message_returns, is_server_span, record_exception_once

logger = logging.getLogger("otel_sentry")

NS = "otel_sentry."
PROVIDER = "provider_error"
DATABASE = "database_error"
PAYMENT = "payment_error"
AUTH = "auth_error"
CACHE = "cache_error"
MODEL_HEALTH = "model_health_error"

LEVELS = ("fatal", "error", "warning", "info", "debug")
_LEVEL_ALIASES = {"warn": "warning", "critical": "fatal", "exception": "error"}
# capture_error(context_type=...) -> error_category, for the context names the seeds use.
_CATEGORY_OF_CONTEXT = {
    "provider": PROVIDER,
    "database": DATABASE,
    "db": DATABASE,
    "payment": PAYMENT,
    "auth": AUTH,
    "authentication": AUTH,
    "cache": CACHE,
    "model_health": MODEL_HEALTH,
}
# Contexts otel_sentry fills itself; a caller's context must not replace them.
_RESERVED_CONTEXTS = frozenset({"trace", "runtime", "os", "response", "exception_context"})
_warned: set[str] = set()


class NotAnException(Exception):
    """Stands in for a non-exception object handed to a capture helper."""


def warn_once(kind: str, text: str, *args: object) -> None:
    """One warning line per kind of bad input per process; the rest are counted."""
    runtime = get_runtime()
    if runtime is not None:
        runtime.counters[f"capture.bad_input.{kind}"] += 1
    if kind not in _warned:
        _warned.add(kind)
        logger.warning("otel_sentry: " + text + " (further ones are counted, not logged)", *args)


def normalize_level(level: object, helper: str) -> str:
    text = str(level).strip().lower() if isinstance(level, str) else ""
    text = _LEVEL_ALIASES.get(text, text)
    if text in LEVELS:
        return text
    warn_once(
        "level",
        "%s(level=%s): expected one of %s; using 'error'",
        helper,
        _sanitize.safe_repr(level, 50),
        ", ".join(LEVELS),
    )
    return "error"


def _stand_in(obj: object, helper: str) -> BaseException:
    shown = _sanitize.safe_repr(obj, 200)
    warn_once(
        "not_an_exception",
        "%s() expects an exception, got %s %s; sending it as NotAnException",
        helper,
        type(obj).__name__,
        shown,
    )
    return NotAnException(f"{helper}() got {type(obj).__name__}: {shown}")


def _unprintable(exc: BaseException) -> bool:
    """True when str() of an exception in the chain does not return in time (it would block)."""
    return any(not exception_message_returns(member) for member in _capture.exception_chain(exc))


def _printable_stand_in(exc: BaseException, reason: Optional[str] = None) -> BaseException:
    """Same type name and traceback, a message that needs no str() of the original (nor any
    attribute of it: its own ``__getattribute__`` may raise)."""
    cls = type(exc)
    stand_in_type = type(cls.__name__, (Exception,), {"__module__": cls.__module__})
    stand_in: BaseException = stand_in_type(
        f"<{cls.__qualname__}: {reason or f'str() did not return within {_sanitize.REPR_TIMEOUT}s'}>"
    )
    return stand_in.with_traceback(BaseException.__traceback__.__get__(exc))  # type: ignore[union-attr]


def _bounded(exc: BaseException) -> BaseException:
    """exc, or a copy of it whose too-long arguments are cut: an event keeps at most
    ``MAX_MESSAGE`` characters of a message, and every step after this one (classification,
    grouping, the span's exception event) would otherwise scan all of a 50 MB message. Same type
    (classification and grouping see it), same traceback and chain. Only exceptions whose str() is
    the built-in one over their arguments: that is what makes the cut arguments the cut message."""
    limit = _sanitize.MAX_MESSAGE * 2
    try:
        args = exc.args
        if not any(isinstance(a, (str, bytes, bytearray)) and len(a) > limit for a in args):
            return exc
        if not _sanitize.exception_str_is_safe(exc) and type(exc).__str__ is not BaseException.__str__:
            return exc
        clone = copy.copy(exc)
        clone.args = tuple(
            _sanitize.clip(a, limit)
            if isinstance(a, str)
            else a[:limit]
            if isinstance(a, (bytes, bytearray))
            else a
            for a in args
        )
        clone.__cause__, clone.__context__ = exc.__cause__, exc.__context__
        clone.__suppress_context__ = exc.__suppress_context__
        return clone.with_traceback(exc.__traceback__)
    except Exception:  # an exception that cannot be copied is captured as it is
        return exc


@contextlib.contextmanager
def _active_span(name: str, mode: str = "own") -> Iterator[trace.Span]:
    """The current span, or a short span of our own when none is active (scripts, workers)."""
    span = trace.get_current_span()
    if mode == "none":
        yield trace.INVALID_SPAN
        return
    if span.get_span_context().is_valid or mode != "own":
        yield span
        return
    tracer = trace.get_tracer("otel_sentry")
    with tracer.start_as_current_span(name, kind=trace.SpanKind.INTERNAL, record_exception=False) as own:
        own.set_status(Status(StatusCode.ERROR))
        yield own


def _revenue_critical(runtime: Optional[Runtime], endpoint_type: str) -> str:
    from ._rules import Rules

    rules = getattr(runtime, "rules", None) or Rules()
    return str(rules.is_revenue_critical(endpoint_type)).lower()


def record(
    exception: object,
    *,
    helper: str,
    category: Optional[str],
    context_name: Optional[str],
    context: Optional[Mapping[str, Any]],
    tags: Mapping[str, Any],
    level: object = "error",
    handled: bool = True,
    mechanism: Optional[str] = None,
    tb: Optional[TracebackType] = None,
    extra: Optional[Mapping[str, Any]] = None,
    soft: bool = False,
    span: str = "own",
    logentry: Optional[dict[str, Any]] = None,
    logger_name: Optional[str] = None,
    status_code: Optional[int] = None,
) -> Optional[str]:
    """Record one exception on the current span and capture it; the event id or None.

    ``span``: ``own`` records on the current span or, when none is active, on a short span of its
    own; ``current`` only on an active span; ``none`` on no span. None is returned when otel_sentry
    is not configured, or when this exception was already reported (one exception, one event).
    Never raises.
    """
    runtime = get_runtime()
    try:
        with _sanitize.budget():
            return _record(
                runtime,
                exception,
                helper=helper,
                category=category,
                context_name=context_name,
                context=context,
                tags=tags,
                level=normalize_level(level, helper),
                handled=handled,
                mechanism=mechanism or helper,
                tb=tb,
                extra=extra,
                soft=soft,
                span_mode=span,
                logentry=logentry,
                logger_name=logger_name,
                status_code=status_code,
            )
    except Exception:
        if runtime is not None:
            runtime.internal_error(f"{helper}()")
        else:
            logger.debug("otel_sentry: %s() failed", helper, exc_info=True)
        return None


def _record(
    runtime: Optional[Runtime],
    exception: object,
    *,
    helper: str,
    category: Optional[str],
    context_name: Optional[str],
    context: Optional[Mapping[str, Any]],
    tags: Mapping[str, Any],
    level: str,
    handled: bool,
    mechanism: str,
    tb: Optional[TracebackType],
    extra: Optional[Mapping[str, Any]],
    soft: bool,
    span_mode: str,
    logentry: Optional[dict[str, Any]],
    logger_name: Optional[str],
    status_code: Optional[int] = None,
) -> Optional[str]:
    exc = exception if isinstance(exception, BaseException) else _stand_in(exception, helper)
    original = exc
    exc = _bounded(exc)
    try:
        unprintable = _unprintable(exc)
    except Exception:  # reading the exception's own attributes raises: its type and traceback remain
        warn_once("unreadable", "%s(): a %s raises when read; sent by type only", helper, type(exc).__name__)
        exc = _printable_stand_in(exc, "its attributes raise when read")
        unprintable = False
    if unprintable:
        warn_once(
            "unprintable",
            "%s(): str() of a %s does not return; sent without its message",
            helper,
            type(exc).__name__,
        )
        exc = _printable_stand_in(exc)
    clean_tags = _sanitize.tags({"error_category": category, **tags} if category else dict(tags))
    contexts: dict[str, dict[str, Any]] = {}
    if context is not None:
        data = _sanitize.data(dict(context) if isinstance(context, Mapping) else {"details": context})
        name = _sanitize.cap(_sanitize.fix_text(context_name or "error_context"), 64)
        contexts["error_context" if name in _RESERVED_CONTEXTS else name] = (
            data if isinstance(data, dict) else {"details": data}
        )
    clean_extra = _sanitize.data(dict(extra)) if extra else None
    with _active_span(f"otel_sentry.{helper}", span_mode) as span:
        event_id = None
        if runtime is not None:
            event_id = _capture.capture(
                runtime,
                exc,
                tb,
                handled=handled,
                mechanism=mechanism,
                level=level,
                tags=clean_tags,
                contexts=contexts,
                extra=clean_extra if isinstance(clean_extra, dict) else None,
                soft=soft,
                logentry=logentry,
                logger_name=logger_name,
                status_code=status_code,
            )
            if exc is not original:
                with contextlib.suppress(Exception):  # an unreadable original cannot be marked
                    _capture._mark_captured(original, BaseException.__traceback__.__get__(original))  # type: ignore[union-attr]
        # A soft capture (a log record, background work) says nothing yet about the request: the
        # server span is marked failed only by a failed request (see _failed_responses).
        if span.is_recording() and not ((soft or helper == "background") and is_server_span(span)):
            attributes: dict[str, Any] = {"exception.escaped": False}
            attributes.update({NS + key: value for key, value in clean_tags.items()})
            if event_id:
                attributes[NS + "event_id"] = event_id
            record_exception_once(span, exc, attributes)
        return event_id


# -- the seven helpers --------------------------------------------------------------------------


def capture_error(
    exception: BaseException,
    context_type: Optional[str] = None,
    context_data: Optional[dict[str, Any]] = None,
    tags: Optional[dict[str, str]] = None,
    level: str = "error",
) -> Optional[str]:
    """Capture a handled exception with a named context and tags; returns the Sentry event id.

    ``context_type`` names the context (``provider``, ``database``, ...) and sets ``error_category``
    (``provider_error``, ...) unless ``tags`` has one. ``level``: fatal, error, warning, info, debug.
    """
    try:
        user_tags = dict(tags) if isinstance(tags, Mapping) else {}
        # any object may come in: its str() may raise or never return (guarded, bounded)
        context_name = _sanitize.safe_str(context_type, 64) if context_type is not None else None
    except Exception:
        user_tags, context_name = {}, None
    category = None
    if context_name and "error_category" not in user_tags:
        name = context_name.strip().lower()
        category = _CATEGORY_OF_CONTEXT.get(name, f"{name}_error")
    return record(
        exception,
        helper="capture_error",
        category=category,
        context_name=context_name or None,
        context=context_data,
        tags=user_tags,
        level=level,
    )


def capture_provider_error(
    exception: BaseException,
    provider: str,
    model: Optional[str] = None,
    request_id: Optional[str] = None,
    endpoint: Optional[str] = None,
    extra_context: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """An LLM/API provider failed. Tags: error_category=provider_error, provider, model."""
    context: dict[str, Any] = {"provider": provider}
    optional = {"model": model, "request_id": request_id, "endpoint": endpoint}
    context.update({k: v for k, v in optional.items() if v is not None})
    if isinstance(extra_context, Mapping):
        context.update(extra_context)
    tags: dict[str, Any] = {"provider": provider}
    if model is not None:
        tags["model"] = model
    return record(
        exception,
        helper="capture_provider_error",
        category=PROVIDER,
        context_name="provider",
        context=context,
        tags=tags,
    )


def capture_database_error(
    exception: BaseException,
    operation: str,
    table: str,
    details: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """A database operation failed. Tags: error_category=database_error, operation, table."""
    return record(
        exception,
        helper="capture_database_error",
        category=DATABASE,
        context_name="database",
        context=_merged({"operation": operation, "table": table}, details),
        tags={"operation": operation, "table": table},
    )


def capture_payment_error(
    exception: BaseException,
    operation: str,
    provider: str = "stripe",
    user_id: Optional[str] = None,
    amount: Optional[float] = None,
    details: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """A payment or credit operation failed. Tags: error_category=payment_error, operation, provider,
    is_revenue_critical (true while the rules count ``payment`` as revenue-critical)."""
    base: dict[str, Any] = {"operation": operation, "provider": provider}
    if user_id is not None:
        base["user_id"] = user_id
    if amount is not None:
        base["amount"] = amount
    return record(
        exception,
        helper="capture_payment_error",
        category=PAYMENT,
        context_name="payment",
        context=_merged(base, details),
        tags={
            "operation": operation,
            "provider": provider,
            "is_revenue_critical": _revenue_critical(get_runtime(), "payment"),
        },
    )


def capture_auth_error(
    exception: BaseException,
    operation: str,
    user_id: Optional[str] = None,
    details: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """Authentication or authorization failed. Tags: error_category=auth_error, operation."""
    base: dict[str, Any] = {"operation": operation}
    if user_id is not None:
        base["user_id"] = user_id
    return record(
        exception,
        helper="capture_auth_error",
        category=AUTH,
        context_name="authentication",
        context=_merged(base, details),
        tags={"operation": operation},
    )


def capture_cache_error(
    exception: BaseException,
    operation: str,
    cache_type: str = "redis",
    key: Optional[str] = None,
    details: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """A cache operation failed. Tags: error_category=cache_error, operation, cache_type."""
    base: dict[str, Any] = {"operation": operation, "cache_type": cache_type}
    if key is not None:
        base["key"] = key
    return record(
        exception,
        helper="capture_cache_error",
        category=CACHE,
        context_name="cache",
        context=_merged(base, details),
        tags={"operation": operation, "cache_type": cache_type},
    )


def capture_model_health_error(
    exception: BaseException,
    model_id: str,
    provider: str,
    gateway: str,
    operation: str = "health_check",
    status: Optional[str] = None,
    response_time_ms: Optional[float] = None,
    details: Optional[dict[str, Any]] = None,
) -> Optional[str]:
    """A model health check failed. Tags: error_category=model_health_error, provider, gateway,
    model_id, model, operation."""
    base: dict[str, Any] = {
        "model_id": model_id,
        "provider": provider,
        "gateway": gateway,
        "operation": operation,
    }
    if status is not None:
        base["status"] = status
    if response_time_ms is not None:
        base["response_time_ms"] = response_time_ms
    return record(
        exception,
        helper="capture_model_health_error",
        category=MODEL_HEALTH,
        context_name="model_health",
        context=_merged(base, details),
        tags={
            "provider": provider,
            "gateway": gateway,
            "model_id": model_id,
            "model": model_id,
            "operation": operation,
        },
    )


def _merged(base: dict[str, Any], details: object) -> dict[str, Any]:
    """The seeds' ``context_data.update(details)``; details that are not a mapping are kept as one."""
    if isinstance(details, Mapping):
        merged = dict(base)
        with contextlib.suppress(Exception):  # a broken mapping keeps the base context
            merged.update(details)
        return merged
    if details is not None:
        base = {**base, "details": details}
    return base
