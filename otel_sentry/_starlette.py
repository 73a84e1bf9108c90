"""Capture of live exceptions in Starlette and FastAPI apps, as an OpenTelemetry instrumentor.

Two hooks, both needed:

* a pure ASGI middleware placed just inside Starlette's outer ``ServerErrorMiddleware`` (so inside the
  OTel server span, whichever instrumentation made it: the contrib FastAPI one or FastAPI's native
  telemetry) sees unhandled exceptions while they propagate and holds the per-request capture state;
* the exception handlers of ``ExceptionMiddleware`` are wrapped, because an ``HTTPException`` or an
  exception an app handler turns into a response never propagates to any middleware. The wrapper
  sees the live exception and the response status, and captures it when the status is a failure
  (500-599 by default), including the seeds' ``raise HTTPException(500) from e`` pattern.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Collection, Iterator
from typing import Any, Callable, Optional

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.trace import Status, StatusCode

from . import _capture, _failed_responses, _in_flight, _request_body, _request_secrets, _sessions, _shutdown
from ._enrich import DURATION_MS, ERROR_CATEGORY, IS_TIMEOUT, SLOW_REQUEST, header_attributes, span_attributes
from ._events import CapturedError
from ._failsafe import internal_error
from ._runtime import Runtime, get_runtime
from ._sanitize import safe_str
from ._span_exceptions import exception_message
from ._span_semantics import note_failed_after_end

logger = logging.getLogger("otel_sentry")

_WRAPPED = "__otel_sentry_wrapped__"


class CaptureMiddleware:
    """Holds the request's capture state and captures exceptions that escape the app.

    ``outer_handler``: the app registered its own handler for ``Exception`` (or 500), which Starlette
    puts on ``ServerErrorMiddleware``, outside this middleware. An exception escaping here is then the
    handler's to answer, maybe with a 4xx: the wrapped handler decides and settles the request.
    """

    def __init__(self, app: Any, outer_handler: bool = False) -> None:
        self.app = app
        self.outer_handler = outer_handler

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        runtime = get_runtime()
        if runtime is not None and scope["type"] == "lifespan":
            await self._lifespan(runtime, scope, receive, send)
            return
        if runtime is None or scope["type"] not in ("http", "websocket") or _capture.SCOPE_KEY in scope:
            # (a mounted sub-app's own stack: the outermost app's capture middleware holds the request)
            await self.app(scope, receive, send)
            return
        try:
            request = _capture.RequestCapture(scope)
            scope[_capture.SCOPE_KEY] = request
            token = _capture.set_current_request(request)
            if scope["type"] == "http":
                receive = _request_body.start(scope, receive, runtime.settings.max_request_body_size)
            request.secrets_token = _request_secrets.start_request(scope, _request_body.body_expected(scope))
            server_span = trace.get_current_span()
            if server_span.is_recording():  # its transaction waits for the outcome (_in_flight)
                request.span_id = server_span.get_span_context().span_id
                _in_flight.started(request.span_id)
        except Exception:
            runtime.internal_error("starting request capture")
            await self.app(scope, receive, send)
            return

        async def send_observing_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                request.status_code = message.get("status")
                # The OTel ASGI middleware ends the server span with the response body: annotate now.
                _annotate_server_span(runtime, request, message.get("headers"))
            await send(message)

        deferred = False
        try:
            await self.app(scope, receive, send_observing_status)
        except Exception as exc:
            if self.outer_handler and scope["type"] == "http":
                deferred = request.deferred = (
                    True  # the app's own handler decides: see _observe_outer_handler
                )
                request.response_exception = exc
                raise
            # A streaming response may already have started with its own status.
            _capture.capture(
                runtime,
                exc,
                exc.__traceback__,
                handled=False,
                mechanism="asgi" if scope["type"] == "http" else "asgi.websocket",
                status_code=(request.status_code or 500) if scope["type"] == "http" else None,
                request=request,
            )
            _annotate_server_span(runtime, request)  # before ServerErrorMiddleware answers
            _mark_span_failed(exc)
            raise
        finally:
            _capture.reset_current_request(token)
            if not deferred:
                settle(runtime, request)

    async def _lifespan(self, runtime: Runtime, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """A startup or shutdown failure is one event, where it happens (the server only logs it).
        The app's shutdown completing drains delivery: servers that end by re-raising SIGTERM
        (uvicorn, its gunicorn workers) never run atexit handlers."""
        try:
            await self.app(scope, receive, _shutdown.lifespan_send(send))
        except Exception as exc:
            # hypercorn answers "startup failed" by raising its own error from send(): the app's is
            # the one it was handling
            failure = exc.__context__ if _is_server_lifespan_error(exc) and exc.__context__ else exc
            _capture.capture(
                runtime, failure, failure.__traceback__, handled=False, mechanism="asgi.lifespan"
            )
            _capture.note_lifespan_failure()
            with contextlib.suppress(Exception):
                runtime.flush(2.0)  # the server exits next, maybe without atexit
            raise


def _is_server_lifespan_error(exc: BaseException) -> bool:
    cls = type(exc)
    return (cls.__module__, cls.__qualname__) == ("hypercorn.utils", "LifespanFailureError")


def settle(runtime: Runtime, request: _capture.RequestCapture) -> None:
    """The request is over: decide from its outcome, emit its events, drop what it held."""
    scope = request.scope
    try:
        _failed_responses.settle_outcome(runtime, request)
    except Exception:
        runtime.internal_error("settling the request's outcome")
    _capture.finish(request)  # tasks that outlive the response now emit their own events
    if scope["type"] == "http":
        _sessions.request_ended(runtime, request.errors)  # release health: one session per request
    if request.errors:
        runtime.emit_request(request)
    if request.held_messages:
        _failed_responses.release_messages(runtime, request)
    # Break the cycle scope -> capture -> exception -> traceback -> frames -> request -> scope:
    # left to the cyclic GC, the frames' locals (an open DB cursor holding a lock, a file)
    # would outlive the request.
    for error in request.errors:
        _capture.release_frame_locals(error.exception)
    request.errors.clear()
    request.failed_spans.clear()
    request.breadcrumbs = None
    request.response_exception = None
    scope.pop(_capture.SCOPE_KEY, None)
    _request_secrets.end_request(request.secrets_token)  # after the events: they are redacted too
    request.secrets_token = None
    if request.span_id is not None:
        _in_flight.settled(request.span_id)  # after _mark_span_failed: its transaction may go now
        request.span_id = None


def _annotate_server_span(
    runtime: Runtime, request: _capture.RequestCapture, response_headers: Any = None
) -> None:
    """Write the request's facts (and its error's classification) on the server span while it is
    still writable. Unsampled requests return at once: enrichment costs them nothing."""
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        if not span.get_span_context().trace_flags.sampled and not request.errors:
            return  # recorded only in case it errors (tail promotion): it did not, nobody will see it
        facts = request.facts(runtime)
        attributes = span_attributes(facts, send_default_pii=runtime.settings.send_default_pii)
        _keep_more_complete_route(span, attributes)
        if runtime.default_header_capture:
            attributes.update(header_attributes(facts.headers, response_headers))
        failure = _failure(runtime, request)
        if failure is not None:
            classification = runtime.classify(failure, facts, request.failed_spans)
            attributes["error.type"] = classification.exception_type
            attributes[IS_TIMEOUT] = classification.is_timeout
            if classification.error_category:
                attributes[ERROR_CATEGORY] = classification.error_category
        span.set_attributes(attributes)
        if facts.slow:
            span.add_event(SLOW_REQUEST, {DURATION_MS: attributes[DURATION_MS]})
    except Exception:
        runtime.internal_error("annotating the server span")


def _mark_span_failed(exc: BaseException) -> None:
    """An exception escaped: ERROR on the server span, even when a streaming response had already
    started with 200 (its transaction is then ``internal_error``, not ``ok``)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exception_message(exc, safe_str)}"))
    elif span.get_span_context().is_valid:
        # The instrumentation ended the span with the response's start (a stream that broke later):
        # its transaction still reports the failure.
        note_failed_after_end(span.get_span_context().span_id)


def _failure(runtime: Runtime, request: _capture.RequestCapture) -> Optional[CapturedError]:
    """The error that made the request fail, if it failed: a failed status or an escaped exception.
    A soft capture of a request that answered 2xx-4xx (a log record, an awaited task's handled
    error) does not mark the server span failed."""
    status = request.status_code
    failed = status is None or status in runtime.settings.failed_status_codes
    if not failed:
        return None
    return next((e for e in request.errors if not e.soft), None) or next(iter(request.errors), None)


def _keep_more_complete_route(span: Any, attributes: dict[str, Any]) -> None:
    """Never replace the instrumentation's ``http.route`` with a less complete template: ours wins
    only where it extends it (``/sub`` -> ``/sub/boom`` for a mounted app, ``/items/{id}`` ->
    ``/v2/items/{id}`` under an instrumentation that misses router prefixes)."""
    ours = attributes.get("http.route")
    existing = (getattr(span, "attributes", None) or {}).get("http.route")
    if ours is None or not isinstance(existing, str) or not existing or existing == ours:
        return
    if not (len(ours) > len(existing) and (ours.startswith(existing) or ours.endswith(existing))):
        del attributes["http.route"]


def _observe_handled(conn: Any, exc: BaseException, tb: Any, response: Any) -> None:
    """A handler turned exc into a response: a failed status is an issue, ``handled: true`` as
    sentry-sdk reports it (an HTTPException 500, an app handler's 5xx)."""
    runtime = get_runtime()
    if runtime is None:
        return
    status = getattr(response, "status_code", None)
    if not isinstance(status, int) or status not in runtime.settings.failed_status_codes:
        return
    scope = getattr(conn, "scope", None) or {}
    request = scope.get(_capture.SCOPE_KEY)
    _capture.capture(
        runtime,
        exc,
        tb,
        handled=True,
        mechanism="starlette",
        status_code=status,
        request=request,
        record_on_span=True,
    )


def _observe_outer_handler(conn: Any, exc: BaseException, tb: Any, response: Any) -> None:
    """The app's handler on ServerErrorMiddleware answered an exception that escaped the capture
    middleware: capture it unless the answer is not a failure (a catch-all mapping to 404), then
    settle the request, which the capture middleware left open for this."""
    runtime = get_runtime()
    scope = getattr(conn, "scope", None) or {}
    request = scope.get(_capture.SCOPE_KEY)
    if runtime is None or not isinstance(request, _capture.RequestCapture):
        return
    status = getattr(response, "status_code", None) if response is not None else 500
    try:
        if request.status_code is None and isinstance(status, int):
            request.status_code = status  # ServerErrorMiddleware sends it past the capture middleware
        if isinstance(status, int) and status in runtime.settings.failed_status_codes:
            _capture.capture(
                runtime,
                exc,
                tb,
                # as sentry-sdk reports it: ServerErrorMiddleware re-raises to the server after the
                # handler answered, so the exception is unhandled (tests/conformance oracle)
                handled=False,
                mechanism="starlette",
                status_code=status,
                request=request,
                record_on_span=True,
            )
        else:
            # Answered as a client error: the server's own "Exception in ASGI application" log line
            # about it (the exception still escapes to the server) is no issue either.
            _capture._mark_captured(exc, tb)
        _annotate_server_span(runtime, request)
    finally:
        if request.deferred:  # else a mounted sub-app's handler: the outer capture middleware settles
            settle(runtime, request)


@contextlib.contextmanager
def _inside_request(conn: Any, outer: bool) -> Iterator[None]:
    """The app's outer handler runs after the capture middleware returned: what it logs (a
    ``logger.exception`` of the error it answers) still belongs to the request it answers."""
    request = (getattr(conn, "scope", None) or {}).get(_capture.SCOPE_KEY)
    if not outer or not isinstance(request, _capture.RequestCapture):
        yield
        return
    token = _capture.set_current_request(request)
    try:
        yield
    finally:
        _capture.reset_current_request(token)


def _handler_failed(outer: bool, conn: Any, exc: BaseException, tb: Any) -> None:
    """The app's outer handler raised: the request it was to answer still gets settled."""
    if outer:
        try:
            _observe_outer_handler(conn, exc, tb, None)
        except Exception:
            internal_error("observing a failed exception handler")


def wrap_exception_handler(handler: Callable[..., Any], outer: bool = False) -> Callable[..., Any]:
    """Wrap one Starlette exception handler so a failure response captures the live exception."""
    if getattr(handler, _WRAPPED, False):
        return handler
    from starlette._utils import is_async_callable

    if is_async_callable(handler):

        @functools.wraps(handler)
        async def async_wrapper(conn: Any, exc: BaseException) -> Any:
            tb = exc.__traceback__  # Starlette clears it once the handler returns
            try:
                with _inside_request(conn, outer):
                    response = await handler(conn, exc)
            except BaseException:
                _handler_failed(outer, conn, exc, tb)
                raise
            try:
                # looked up at call time (a test plants a bug in it)
                (_observe_outer_handler if outer else _observe_handled)(conn, exc, tb, response)
            except Exception:
                internal_error("observing an exception handler's response")
            return response

        wrapper: Callable[..., Any] = async_wrapper
    else:

        @functools.wraps(handler)
        def sync_wrapper(conn: Any, exc: BaseException) -> Any:
            tb = exc.__traceback__
            try:
                with _inside_request(conn, outer):
                    response = handler(conn, exc)
            except BaseException:
                _handler_failed(outer, conn, exc, tb)
                raise
            try:
                # looked up at call time (a test plants a bug in it)
                (_observe_outer_handler if outer else _observe_handled)(conn, exc, tb, response)
            except Exception:
                internal_error("observing an exception handler's response")
            return response

        wrapper = sync_wrapper
    setattr(wrapper, _WRAPPED, True)
    return wrapper


def _patched_exception_middleware_init(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        for handlers in (self._exception_handlers, self._status_handlers):
            for key, handler in list(handlers.items()):
                handlers[key] = wrap_exception_handler(handler)

    setattr(__init__, _WRAPPED, original)
    return __init__


def _patched_build_middleware_stack(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(original)
    def build_middleware_stack(self: Any) -> Any:
        stack = original(self)
        from starlette.middleware.errors import ServerErrorMiddleware

        if isinstance(stack, ServerErrorMiddleware) and not isinstance(stack.app, CaptureMiddleware):
            # The app's own handler for Exception/500 sits here (outside the capture middleware);
            # with debug on, Starlette answers with its traceback page instead of calling it.
            outer = stack.handler is not None and not stack.debug
            if outer:
                stack.handler = wrap_exception_handler(stack.handler, outer=True)  # type: ignore[arg-type]
            stack.app = CaptureMiddleware(stack.app, outer_handler=outer)  # type: ignore[assignment]
        else:
            stack = CaptureMiddleware(stack)
        return stack

    setattr(build_middleware_stack, _WRAPPED, original)
    return build_middleware_stack


class StarletteCaptureInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Installs the two capture hooks on Starlette (and so FastAPI) classes."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("starlette >= 0.27",)

    def _instrument(self, **kwargs: Any) -> None:
        from starlette.middleware.exceptions import ExceptionMiddleware

        _failed_responses.install()
        if not hasattr(ExceptionMiddleware.__init__, _WRAPPED):
            ExceptionMiddleware.__init__ = _patched_exception_middleware_init(ExceptionMiddleware.__init__)  # type: ignore[method-assign]
        for cls in _app_classes():
            current = cls.__dict__["build_middleware_stack"]
            if not hasattr(current, _WRAPPED):
                cls.build_middleware_stack = _patched_build_middleware_stack(current)

    def _uninstrument(self, **kwargs: Any) -> None:
        from starlette.middleware.exceptions import ExceptionMiddleware

        _failed_responses.uninstall()
        targets: list[tuple[Any, str]] = [(ExceptionMiddleware, "__init__")]
        targets += [(cls, "build_middleware_stack") for cls in _app_classes()]
        for cls, name in targets:
            original = getattr(cls.__dict__[name], _WRAPPED, None)
            if callable(original):
                setattr(cls, name, original)


def _app_classes() -> list[Any]:
    """Starlette, and FastAPI, which overrides build_middleware_stack without calling super()."""
    from starlette.applications import Starlette

    classes: list[Any] = [Starlette]
    try:
        from fastapi import applications
    except ImportError:
        return classes
    fastapi_cls = applications.FastAPI
    if "build_middleware_stack" in fastapi_cls.__dict__:
        classes.append(fastapi_cls)
    return classes


def instrument_starlette() -> None:
    """Install the hooks unless already there (configure() without opentelemetry-instrument)."""
    try:
        instrumentor = StarletteCaptureInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    except ImportError:
        logger.debug("otel_sentry: starlette is not installed; no request capture hooks")
