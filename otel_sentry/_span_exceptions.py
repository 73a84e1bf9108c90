"""Exceptions on OpenTelemetry spans, as users of both ecosystems expect them.

* ``record_exception_once``: the SDK's ``record_exception``, at most once per exception and span (a
  handled 5xx was recorded up to three times: by the handler hook, a log record, a helper);
* ``exception_message``: ``str(exc)`` computed once per exception, guarded and bounded (a user
  ``__str__`` may raise or take seconds), shared by the span event, the classification and the
  Sentry event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind


def is_server_span(span: object) -> bool:
    """True for the SDK's server span of a request (any other span type: False)."""
    return getattr(span, "kind", None) == SpanKind.SERVER


def record_exception_once(span: Any, exc: BaseException, attributes: Mapping[str, Any]) -> bool:
    """``span.record_exception``, unless the span already holds an ``exception`` event of the same
    type and message (one exception, recorded once per span). The message is computed once, guarded
    (an exception's ``__str__`` may raise or never return), and the stack trace is formatted without
    calling it again. True when recorded."""
    import traceback

    from ._classify import otel_exception_type
    from ._sanitize import safe_str

    exception_type = otel_exception_type(exc)
    message = exception_message(exc, safe_str)
    for event in getattr(span, "events", None) or ():
        event_attributes = getattr(event, "attributes", None) or {}
        if (
            getattr(event, "name", None) == "exception"
            and event_attributes.get("exception.type") == exception_type
            and event_attributes.get("exception.message") == message
        ):
            return False
    stack = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    stacktrace = f"Traceback (most recent call last):\n{stack}{exception_type}: {message}\n"
    span.add_event(
        "exception",
        {
            "exception.type": exception_type,
            "exception.message": message,
            "exception.stacktrace": stacktrace,
            "exception.escaped": False,
            **attributes,
        },
    )
    return True


_MESSAGE = "__otel_sentry_message__"


def exception_message(exc: BaseException, safe_str: Any) -> str:
    """str(exc) at most once per exception (guarded, bounded), remembered on the exception."""
    try:
        cached = vars(exc).get(_MESSAGE)
    except TypeError:
        return str(safe_str(exc))
    if isinstance(cached, str):
        return cached
    text = str(safe_str(exc))
    vars(exc)[_MESSAGE] = text
    return text


def exception_message_returns(exc: BaseException) -> bool:
    """False when str(exc) did not return in time; otherwise its text is remembered on exc, so
    the capture that follows does not call it again."""
    from ._sanitize import MAX_MESSAGE, _guard, _Unavailable, cap, exception_str_is_safe, fix_text

    try:
        if isinstance(vars(exc).get(_MESSAGE), str) or exception_str_is_safe(exc):
            return True
    except TypeError:
        return True
    text = _guard.call(exc, lambda: str(exc), "str")
    if isinstance(text, _Unavailable):
        return False
    vars(exc)[_MESSAGE] = cap(fix_text(text), MAX_MESSAGE)
    return True
