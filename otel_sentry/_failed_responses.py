"""What a request's outcome decides about its captures: failed responses nobody raised, soft captures
of requests that went well.

* **Every 5xx is an issue, exactly one.** An app that catches an exception and answers 500 itself
  (``except Exception: return JSONResponse(status_code=500)``), or a framework that builds its own
  error responses, raises nothing any capture point sees. When the request ends with a failed status
  and nothing was captured, the exception that was being handled when the response object was built
  is captured (live frames, ``handled: true``); with none, a message event named after route and
  status, grouped per route and status.
* **A soft capture of a request that went well is not an issue.** A log record at error level (a
  framework's request-parsing code calling ``logger.exception`` before answering 422), an exception
  of an asyncio task or executor job the request then awaited and handled: the request ended 2xx, 3xx
  or 4xx, so nothing failed. They stay breadcrumbs (and Sentry log items when the logs signal is on)
  and are counted; ``OTEL_SENTRY_LOG_EVENTS_IN_OK_REQUESTS`` restores sentry-sdk's rule for log
  records. A request without a response, or with a failed one, keeps them.
"""

from __future__ import annotations

import contextlib
import functools
import http
import sys
import uuid
from typing import TYPE_CHECKING, Any, Callable, Optional

from opentelemetry import trace

from . import _capture
from ._runtime import get_runtime
from ._transport import ERROR

if TYPE_CHECKING:
    from ._runtime import Runtime

_ORIGINAL = "__otel_sentry_original__"


def _failed(runtime: Runtime, status: Optional[int]) -> bool:
    return status is not None and status in runtime.settings.failed_status_codes


def note_response_built(status: object) -> None:
    """A response object with ``status`` is being built: remember the exception being handled."""
    if not isinstance(status, int) or status < 400:
        return
    request = _capture.current_request()
    if request is None or request.done:
        return
    runtime = get_runtime()
    if runtime is None or not _failed(runtime, status):
        return
    exc = sys.exc_info()[1]
    if isinstance(exc, Exception):
        request.response_exception = exc


def settle_outcome(runtime: Runtime, request: _capture.RequestCapture) -> None:
    """Before the request's events go out: drop soft captures of a request that went well, and make
    a failed response that no capture explains one issue."""
    status = request.status_code
    if status is not None and not _failed(runtime, status):
        keep_logs = runtime.settings.log_events_in_ok_requests
        kept = [e for e in request.errors if not e.soft or (keep_logs and e.logger is not None)]
        dropped = len(request.errors) - len(kept)
        if not keep_logs:
            dropped += len(request.held_messages)
            request.held_messages.clear()
        if dropped:
            runtime.counters["soft_capture.request_ok"] += dropped
            request.errors[:] = kept
        return
    if not _failed(runtime, status) or any(not e.soft for e in request.errors):
        return
    if request.errors or request.held_messages:  # a soft capture (the failure's log record...)
        return
    exc = request.response_exception
    if exc is not None:
        _capture.capture(
            runtime,
            exc,
            exc.__traceback__,
            handled=True,
            mechanism="starlette.response",
            status_code=status,
            request=request,
            record_on_span=True,
        )
        if request.errors:
            return
    _message_event(runtime, request, status)  # type: ignore[arg-type]


def release_messages(runtime: Runtime, request: _capture.RequestCapture) -> None:
    """Send the log message events the request held (its outcome kept them)."""
    held, request.held_messages = request.held_messages, []
    for event in held:
        runtime.submit(event, ERROR)


def _message_event(runtime: Runtime, request: _capture.RequestCapture, status: int) -> None:
    """A failed response with no exception anywhere: one message event per route and status."""
    from ._events import CapturedError, error_event

    facts = request.facts(runtime)
    name = facts.route or facts.path
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "HTTP error"
    message = f"{status} {phrase}: {facts.method} {name}"
    error = CapturedError(
        exception=_NoException(),
        values=[],
        handled=True,
        status_code=status,
        span_context=trace.get_current_span().get_span_context(),
        event_id=uuid.uuid4().hex,
        logentry={"message": message, "formatted": message},
        breadcrumbs=list(request.breadcrumbs or ()),
    )
    event = error_event(error, facts, runtime.defaults, send_default_pii=runtime.settings.send_default_pii)
    event.pop("exception", None)
    event.get("tags", {}).pop("exception_type", None)
    event.get("contexts", {}).pop("exception_context", None)
    event["fingerprint"] = ["otel_sentry.failed_response", facts.method, name, str(status)]
    event.setdefault("tags", {})["error_category"] = "server_error"
    runtime.counters["error.failed_response"] += 1
    runtime.submit(event, ERROR)


class _NoException(Exception):
    """Placeholder for a message event; never raised."""


def _patched_init(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with contextlib.suppress(Exception):  # never between an app and its response
            note_response_built(getattr(self, "status_code", None))

    setattr(__init__, _ORIGINAL, original)
    return __init__


def install() -> None:
    """Note the exception being handled when a failed response is built (Response subclasses that
    call Response.__init__: JSONResponse, HTMLResponse, PlainTextResponse, RedirectResponse...;
    StreamingResponse and FileResponse set their status themselves)."""
    try:
        from starlette.responses import FileResponse, Response, StreamingResponse
    except ImportError:
        return
    for cls in (Response, StreamingResponse, FileResponse):
        current = cls.__dict__.get("__init__")
        if current is not None and getattr(current, _ORIGINAL, None) is None:
            cls.__init__ = _patched_init(current)  # type: ignore[method-assign]


def uninstall() -> None:
    try:
        from starlette.responses import FileResponse, Response, StreamingResponse
    except ImportError:
        return
    for cls in (Response, StreamingResponse, FileResponse):
        original = getattr(cls.__dict__.get("__init__"), _ORIGINAL, None)
        if original is not None:
            cls.__init__ = original  # type: ignore[method-assign]
