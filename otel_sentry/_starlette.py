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

import functools
import logging
from collections.abc import Collection
from typing import Any, Callable

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import _capture, _request_body, _request_secrets, _sessions, _shutdown
from ._enrich import DURATION_MS, ERROR_CATEGORY, IS_TIMEOUT, SLOW_REQUEST, header_attributes, span_attributes
from ._failsafe import internal_error
from ._runtime import Runtime, get_runtime

logger = logging.getLogger("otel_sentry")

_WRAPPED = "__otel_sentry_wrapped__"


class CaptureMiddleware:
    """Holds the request's capture state and captures exceptions that escape the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        runtime = get_runtime()
        if runtime is not None and scope["type"] == "lifespan":
            # The app's shutdown completing drains delivery: servers that end by re-raising
            # SIGTERM (uvicorn, its gunicorn workers) never run atexit handlers.
            await self.app(scope, receive, _shutdown.lifespan_send(send))
            return
        if runtime is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secrets_token = None
        try:
            request = _capture.RequestCapture(scope)
            scope[_capture.SCOPE_KEY] = request
            token = _capture.set_current_request(request)
            receive = _request_body.start(scope, receive, runtime.settings.max_request_body_size)
            secrets_token = _request_secrets.start_request(scope, _request_body.body_expected(scope))
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

        try:
            await self.app(scope, receive, send_observing_status)
        except Exception as exc:
            # A streaming response may already have started with its own status.
            _capture.capture(
                runtime,
                exc,
                exc.__traceback__,
                handled=False,
                mechanism="asgi",
                status_code=request.status_code or 500,
                request=request,
            )
            _annotate_server_span(runtime, request)  # before ServerErrorMiddleware answers
            raise
        finally:
            _capture.reset_current_request(token)
            _capture.finish(request)  # tasks that outlive the response now emit their own events
            _sessions.request_ended(runtime, request.errors)  # release health: one session per request
            if request.errors:
                runtime.emit_request(request)
            # Break the cycle scope -> capture -> exception -> traceback -> frames -> request -> scope:
            # left to the cyclic GC, the frames' locals (an open DB cursor holding a lock, a file)
            # would outlive the request.
            for error in request.errors:
                _capture.release_frame_locals(error.exception)
            request.errors.clear()
            request.failed_spans.clear()
            request.breadcrumbs = None
            scope.pop(_capture.SCOPE_KEY, None)
            _request_secrets.end_request(secrets_token)  # after the events: they are redacted too


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
        if runtime.default_header_capture:
            attributes.update(header_attributes(facts.headers, response_headers))
        if request.errors:
            classification = runtime.classify(request.errors[0], facts, request.failed_spans)
            attributes["error.type"] = classification.exception_type
            attributes[IS_TIMEOUT] = classification.is_timeout
            if classification.error_category:
                attributes[ERROR_CATEGORY] = classification.error_category
        span.set_attributes(attributes)
        if facts.slow:
            span.add_event(SLOW_REQUEST, {DURATION_MS: attributes[DURATION_MS]})
    except Exception:
        runtime.internal_error("annotating the server span")


def _observe_handled(conn: Any, exc: BaseException, tb: Any, response: Any) -> None:
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
        handled=False,
        mechanism="starlette",
        status_code=status,
        request=request,
        record_on_span=True,
    )


def wrap_exception_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap one Starlette exception handler so a failure response captures the live exception."""
    if getattr(handler, _WRAPPED, False):
        return handler
    from starlette._utils import is_async_callable

    if is_async_callable(handler):

        @functools.wraps(handler)
        async def async_wrapper(conn: Any, exc: BaseException) -> Any:
            tb = exc.__traceback__  # Starlette clears it once the handler returns
            response = await handler(conn, exc)
            try:
                _observe_handled(conn, exc, tb, response)
            except Exception:
                internal_error("observing an exception handler's response")
            return response

        wrapper: Callable[..., Any] = async_wrapper
    else:

        @functools.wraps(handler)
        def sync_wrapper(conn: Any, exc: BaseException) -> Any:
            tb = exc.__traceback__
            response = handler(conn, exc)
            try:
                _observe_handled(conn, exc, tb, response)
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
            stack.app = CaptureMiddleware(stack.app)  # type: ignore[assignment]
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

        if not hasattr(ExceptionMiddleware.__init__, _WRAPPED):
            ExceptionMiddleware.__init__ = _patched_exception_middleware_init(ExceptionMiddleware.__init__)  # type: ignore[method-assign]
        for cls in _app_classes():
            current = cls.__dict__["build_middleware_stack"]
            if not hasattr(current, _WRAPPED):
                cls.build_middleware_stack = _patched_build_middleware_stack(current)

    def _uninstrument(self, **kwargs: Any) -> None:
        from starlette.middleware.exceptions import ExceptionMiddleware

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
