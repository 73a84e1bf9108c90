"""Where live exceptions are collected, deduplicated and turned into events.

During an HTTP request every capture point (the ASGI middleware, the wrapped exception handlers, an
app's own sentry_sdk calls) adds to one :class:`RequestCapture`; when the request ends its events are
built and queued. An exception that is already captured, or that sits in the __cause__/__context__
chain of one that is, is not captured again: one exception, one event. Outside a request, captures are
emitted at once.

A *soft* capture (a log record, an exception leaving an asyncio task) is provisional while its
request runs: a later capture point that sees the same exception, or one chained to it, knows more
(the route, the HTTPException it became) and replaces it, so the seeds' ``logger.error(...,
exc_info=True); raise HTTPException(500) from e`` stays one event. A capture that arrives after its
request ended (a task that outlived the response) is emitted at once with that request's context.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ._classify import FailedSpan
from ._enrich import enrich
from ._events import CapturedError, RequestFacts
from ._frames import exception_values
from ._sanitize import safe_str
from ._span_exceptions import exception_message, record_exception_once

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("otel_sentry")

SCOPE_KEY = "otel_sentry.request"
_MAX_CHAIN = 50
_MAX_CAPTURES_PER_REQUEST = 20
_ENTRY_KEYS = ("type", "path", "root_path", "method", "app", "headers", "scheme", "server")

_current_request: contextvars.ContextVar[Optional[RequestCapture]] = contextvars.ContextVar(
    "otel_sentry_request", default=None
)
# Set on every exception of a captured chain: the traceback seen at capture. Built-in exceptions
# cannot be weakly referenced, so the mark lives on the exception itself. Comparing tracebacks (not a
# plain flag) keeps a reused exception instance, raised again later, capturable.
_MARK = "__otel_sentry_captured_tb__"


def exception_chain(exc: BaseException) -> list[BaseException]:
    """exc, then its causes/contexts, bounded and cycle-safe."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen and len(chain) < _MAX_CHAIN:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def _same_raise(outer: Optional[TracebackType], inner: TracebackType) -> bool:
    """True when inner is the tail of outer's chain because the exception propagated outward.

    Re-raising a reused exception instance also prepends frames to its old traceback; there the
    frame that joins the two parts is not the caller of the old head frame. (Completed coroutine
    frames have no f_back; those links count as propagation.)
    """
    previous, node, steps = None, outer, 0
    while node is not None and steps < 1000:
        if node is inner:
            if previous is None:
                return True
            caller = inner.tb_frame.f_back
            # ``raise exc`` in the except block of the frame that caught it (Starlette's
            # ServerErrorMiddleware after the app's handler answered) prepends that same frame
            return caller is None or caller is previous.tb_frame or inner.tb_frame is previous.tb_frame
        previous, node, steps = node, node.tb_next, steps + 1
    return False


def captured_before(exc: BaseException, tb: Optional[TracebackType]) -> bool:
    """True when this raise of exc (or of an exception in its chain) was already captured."""
    for member in exception_chain(exc):
        try:
            marked = vars(member).get(_MARK, False)
        except TypeError:  # no __dict__
            continue
        if marked is False:
            continue
        current = tb if member is exc and tb is not None else member.__traceback__
        if marked is None or current is None:
            return True
        # The same raise seen further out has more frames prepended, so one chain holds the other.
        if _same_raise(current, marked) or _same_raise(marked, current):
            return True
    return False


def _mark_captured(exc: BaseException, tb: Optional[TracebackType]) -> None:
    for member in exception_chain(exc):
        with contextlib.suppress(TypeError):
            vars(member)[_MARK] = tb if member is exc else member.__traceback__


def _overlaps(a: BaseException, b: BaseException) -> bool:
    return any(x is b for x in exception_chain(a)) or any(x is a for x in exception_chain(b))


class RequestCapture:
    """Per-request state: request facts and the errors captured while serving it."""

    __slots__ = (
        "_facts",
        "breadcrumbs",
        "deferred",
        "done",
        "entry",
        "errors",
        "failed_spans",
        "held_messages",
        "response_exception",
        "scope",
        "secrets_token",
        "span_id",
        "started",
        "status_code",
    )

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        # The request as the server sent it: routing rewrites path, root_path, app and route in place
        # (mounted sub-apps), and the full route template and URL are computed from this.
        self.entry = {key: scope[key] for key in _ENTRY_KEYS if key in scope}
        self.started = time.time()
        self.status_code: Optional[int] = None
        self.errors: list[CapturedError] = []
        self.failed_spans: list[FailedSpan] = []
        self.held_messages: list[dict[str, Any]] = []  # log message events, until the outcome is known
        self._facts: Optional[RequestFacts] = None
        self.secrets_token: Any = None  # the request's remembered secrets (_request_secrets)
        self.span_id: Optional[int] = None  # its recording server span, while in flight (_in_flight)
        self.deferred = False  # an exception escaped to the app's own outer handler, which settles
        self.done = False  # set when the request's events are emitted; later captures go out at once
        self.breadcrumbs: Optional[deque[dict[str, Any]]] = None  # filled by _logging, bounded
        # The exception being handled when the app built a failed response (see _failed_responses).
        self.response_exception: Optional[BaseException] = None

    def facts(self, runtime: Runtime) -> RequestFacts:
        """Built once, only for sampled or failed requests: the others pay nothing for headers or users.
        A later call (the events at the end of the request) refreshes status and duration."""
        facts = self._facts
        if facts is None:
            facts = RequestFacts.from_scope({**self.scope, **self.entry})
            facts.started = self.started
        facts.status_code = self.status_code
        if facts.route is None:
            facts.update_route(self.scope, self.entry)
        self._facts = enrich(
            facts,
            self.scope,
            runtime.rules,
            slow_threshold=runtime.settings.slow_request_seconds,
            hash_secret=runtime.hash_secret,
        )
        return self._facts

    def already_captured(self, exc: BaseException) -> bool:
        return any(_overlaps(error.exception, exc) for error in self.errors)


def _members(exc: BaseException) -> list[BaseException]:
    """exc's chain plus, for exception groups (TaskGroup, gather), their members; bounded."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < _MAX_CHAIN * 2:
        for member in exception_chain(pending.pop()):
            found.append(member)
            grouped = getattr(member, "exceptions", None)  # BaseExceptionGroup, or its backport
            if isinstance(grouped, tuple):
                pending.extend(e for e in grouped if isinstance(e, BaseException))
    return found


def _supersede(request: RequestCapture, exc: BaseException) -> list[CapturedError]:
    """Remove and return the request's soft captures that exc (its chain, its group members) holds."""
    members = _members(exc)
    removed = [e for e in request.errors if e.soft and any(m is e.exception for m in members)]
    if removed:
        request.errors[:] = [e for e in request.errors if not any(e is r for r in removed)]
    return removed


def _inherit(error: CapturedError, earlier: list[CapturedError]) -> None:
    """What the replaced soft captures knew (category tags, contexts, the log message) carries over."""
    for old in earlier:
        error.tags = {**{k: v for k, v in old.tags.items() if k not in _NOT_INHERITED}, **error.tags}
        error.contexts = {**old.contexts, **error.contexts}
        error.extra = {**old.extra, **error.extra}
        error.logentry = error.logentry or old.logentry
        error.logger = error.logger or old.logger


# Orders "join the request's events" against "the request ends" for captures made on other threads
# (a thread or an executor job started by the request), so an error is never lost in between.
_end_lock = threading.Lock()


def _join(request: RequestCapture, error: CapturedError) -> bool:
    with _end_lock:
        if request.done:
            return False
        request.errors.append(error)
        return True


def release_frame_locals(exc: BaseException) -> None:
    """Re-sync the locals snapshots that frame-variable capture left on the traceback's frames.

    Reading ``frame.f_locals`` (sentry-sdk does, for frame variables) caches a dict on the frame
    (before Python 3.13). Taken inside an ``except ... as e`` block it keeps ``e``, so exception ->
    traceback -> frame -> snapshot -> exception is a cycle that only the cyclic GC frees, and with it
    every local of every frame: an open database cursor kept its write lock after the request ended.
    Reading ``f_locals`` again once those blocks are over drops the stale entries and the cycle.
    """
    for member in exception_chain(exc):
        try:
            marked = vars(member).get(_MARK)
        except TypeError:
            marked = None
        for tb in {id(t): t for t in (member.__traceback__, marked) if t is not None}.values():
            steps = 0
            while tb is not None and steps < 1000:
                with contextlib.suppress(Exception):
                    tb.tb_frame.f_locals  # noqa: B018 - the read is the point
                tb, steps = tb.tb_next, steps + 1


_lifespan_failed_at: Optional[float] = None
_SERVER_LOGGERS = ("uvicorn", "hypercorn", "gunicorn")


def note_lifespan_failure() -> None:
    global _lifespan_failed_at
    _lifespan_failed_at = time.monotonic()


def is_server_echo(logger_name: str) -> bool:
    """A server's own log line saying the app's startup/shutdown failed ("Application startup
    failed. Exiting."), right after that failure was captured where it happened: not a second issue."""
    return (
        _lifespan_failed_at is not None
        and time.monotonic() - _lifespan_failed_at < 10.0
        and logger_name.startswith(_SERVER_LOGGERS)
    )


def hold_message(request: Optional[RequestCapture], event: dict[str, Any]) -> bool:
    """Keep a log record's message event until its request's outcome is known; False when there is
    no running request (the caller sends it at once)."""
    if request is None:
        return False
    with _end_lock:
        if request.done:
            return False
        if len(request.held_messages) < _MAX_CAPTURES_PER_REQUEST:  # past the bound: dropped
            request.held_messages.append(event)
        return True


def finish(request: RequestCapture) -> None:
    """Mark the request ended: its event list is final, later captures are emitted on their own."""
    with _end_lock:
        request.done = True


_NOT_INHERITED = frozenset({"background", "background_task"})  # where the soft capture was made


def _parent_span_id(span: Any) -> Optional[str]:
    parent = getattr(span, "parent", None)  # the SDK's spans; a non-recording span has none
    return f"{parent.span_id:016x}" if parent is not None and getattr(parent, "is_valid", False) else None


def current_request() -> Optional[RequestCapture]:
    return _current_request.get()


def set_current_request(request: Optional[RequestCapture]) -> contextvars.Token[Optional[RequestCapture]]:
    return _current_request.set(request)


def reset_current_request(token: contextvars.Token[Optional[RequestCapture]]) -> None:
    _current_request.reset(token)


def capture(
    runtime: Runtime,
    exc: BaseException,
    tb: Optional[TracebackType] = None,
    *,
    handled: bool,
    mechanism: str,
    level: str = "error",
    status_code: Optional[int] = None,
    request: Optional[RequestCapture] = None,
    record_on_span: bool = False,
    tags: Optional[Mapping[str, str]] = None,
    contexts: Optional[Mapping[str, dict[str, Any]]] = None,
    extra: Optional[Mapping[str, Any]] = None,
    logentry: Optional[dict[str, Any]] = None,
    logger_name: Optional[str] = None,
    soft: bool = False,
) -> Optional[str]:
    """Capture one live exception; returns its event id, or None when it was a duplicate.

    ``tags``/``contexts``/``extra`` must already be sanitized (see ``_sanitize``). Never raises: a
    failure here is logged and counted, never passed to the host app.
    """
    try:
        request = request or _current_request.get()
        tb = tb if tb is not None else exc.__traceback__
        active = request is not None and not request.done
        superseded = _supersede(request, exc) if active and not soft else []  # type: ignore[arg-type]
        if not superseded and captured_before(exc, tb):
            return None
        if active and (
            request.already_captured(exc)  # type: ignore[union-attr]
            or len(request.errors) >= _MAX_CAPTURES_PER_REQUEST  # type: ignore[union-attr]
        ):
            return None
        _mark_captured(exc, tb)
        span = trace.get_current_span()
        if record_on_span and span.is_recording():
            # Handled exceptions never reach the OTel middleware; record them for every backend.
            record_exception_once(span, exc, {"exception.escaped": False})
            span.set_status(
                Status(StatusCode.ERROR, f"{type(exc).__name__}: {exception_message(exc, safe_str)}")
            )
        error = CapturedError(
            exception=exc,
            values=exception_values(
                exc,
                tb,
                handled=handled,
                mechanism_type=mechanism,
                options=runtime.frame_options,
            ),
            handled=handled,
            level=level,
            status_code=status_code,
            span_context=span.get_span_context(),
            parent_span_id=_parent_span_id(span),
            tags=dict(tags or {}),
            contexts=dict(contexts or {}),
            extra=dict(extra or {}),
            logentry=logentry,
            logger=logger_name,
            soft=soft,
            breadcrumbs=list(request.breadcrumbs or ()) if request is not None else [],
        )
        _inherit(error, superseded)
        if request is not None and _join(request, error):
            pass
        elif request is not None:  # the request already ended: emit now, with its context
            runtime.emit(error, request.facts(runtime), request.failed_spans)
        else:
            runtime.emit(error, None)
        return error.event_id
    except Exception:
        runtime.internal_error("capturing an exception")
        return None
