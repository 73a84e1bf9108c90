"""Errors in background work: Starlette/FastAPI background tasks, asyncio tasks, threads, executors.

The seeds' audit left these out ("background tasks (not audited)"): an exception raised after the
response, in a task nobody awaits, or in a thread, never reached their middleware. Each kind is
captured where it leaves the user's code, in the context of whoever started it, so the event carries
the trace (and the request context) of the request that spawned it, even when it outlives the response:

* ``BackgroundTask.__call__`` (what ``BackgroundTasks.add_task`` runs after the response is sent);
* asyncio: a task factory on the running loop adds a done-callback to every task (``create_task``,
  ``gather``, task groups, anyio) that notes the starter's context on a failed task's exception,
  without marking it retrieved. A loop exception handler reports what asyncio says nobody retrieved
  (tasks, futures, callbacks) and then calls the previous handler. uvicorn creates its loop after
  the distro ran, so both are installed when the app builds its middleware stack, inside the loop;
* threads: ``Thread.start`` snapshots the starter's context, ``threading.excepthook`` reports;
* ``ThreadPoolExecutor.submit``: the job's exception is reported when its future is collected and
  nobody called ``result()``/``exception()`` (through ``run_in_executor``, asyncio's own check).

Only an exception nobody retrieved is an error of the background work: a health check that gathers
several backends and reports which failed, or a retry loop, is not an issue; an exception that the
request awaits and lets propagate is captured where it arrives. A server's own shutdown control
flow (hypercorn's ``ShutdownError`` at every graceful stop) is never reported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import threading
import weakref
from collections.abc import Collection
from types import TracebackType
from typing import Any, Callable, Optional

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import _helpers
from ._runtime import get_runtime

logger = logging.getLogger("otel_sentry")

_ORIGINAL = "__otel_sentry_original__"
_CONTEXT = "_otel_sentry_context"
_LOOP_MARK = "_otel_sentry_hooked"
_installed = False


def _enabled() -> bool:
    runtime = get_runtime()
    return runtime is not None and bool(getattr(runtime.settings, "capture_background", True))


def report(
    exc: BaseException,
    tb: Optional[TracebackType],
    *,
    kind: str,
    name: str,
    soft: bool,
    context: Optional[contextvars.Context] = None,
) -> None:
    """Capture an exception that left background work; in ``context`` (the starter's) when given."""
    if not isinstance(exc, Exception) or _is_shutdown_flow(exc) or not _enabled():
        return

    def capture() -> None:
        _helpers.record(
            exc,
            helper="background",
            category=None,
            context_name=None,
            context=None,
            tags={"background": kind, "background_task": name},
            handled=False,
            mechanism=kind,
            tb=tb,
            soft=soft,
        )

    try:
        if context is not None:
            context.copy().run(capture)
        else:
            capture()
    except Exception:
        logger.debug("otel_sentry: reporting a background error failed", exc_info=True)


def _name_of(func: Any) -> str:
    func = getattr(func, "func", func)  # functools.partial
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or type(func).__name__)


# -- Starlette / FastAPI BackgroundTasks ----------------------------------------------------------


def _patch_background_task() -> None:
    from starlette.background import BackgroundTask

    original = BackgroundTask.__call__
    if getattr(original, _ORIGINAL, None) is not None:
        return

    @functools.wraps(original)
    async def __call__(self: Any) -> None:
        try:
            await original(self)
        except Exception as exc:
            report(
                exc, exc.__traceback__, kind="starlette.background_task", name=_name_of(self.func), soft=False
            )
            raise

    setattr(__call__, _ORIGINAL, original)
    BackgroundTask.__call__ = __call__  # type: ignore[method-assign]


def _unpatch_background_task() -> None:
    from starlette.background import BackgroundTask

    original = getattr(BackgroundTask.__call__, _ORIGINAL, None)
    if original is not None:
        BackgroundTask.__call__ = original  # type: ignore[method-assign]


# -- asyncio --------------------------------------------------------------------------------------


# Where an exception of background work was raised from: the starter's context, the kind and name.
# Stored on the exception itself, read when asyncio reports it was never retrieved.
_ORIGIN = "__otel_sentry_origin__"


def _remember_origin(
    exc: BaseException, kind: str, name: str, context: Optional[contextvars.Context]
) -> None:
    with contextlib.suppress(Exception):  # no __dict__: reported without its starter's context
        vars(exc).setdefault(_ORIGIN, (kind, name, context))


def _task_done(task: asyncio.Future[Any]) -> None:
    """Note where a failed task ran. Its exception is an error of the background work only if
    nobody retrieves it (asyncio then reports "Task exception was never retrieved" to the loop's
    exception handler, see below): a task the request awaits and handles is not an issue, one whose
    exception propagates is captured where it arrives."""
    if task.cancelled():
        return
    # Task._exception reads the outcome without marking it retrieved (task.exception() would, and
    # asyncio would then stay silent about a task nobody awaited).
    exc = getattr(task, "_exception", None) if hasattr(task, "_exception") else None
    if isinstance(exc, Exception):
        name = task.get_name() if isinstance(task, asyncio.Task) else type(task).__name__
        # Done callbacks run in the task's context: the request's, for a task it started.
        _remember_origin(exc, "asyncio.task", name, contextvars.copy_context())


def _loop_exception_handler(previous: Optional[Callable[..., Any]]) -> Callable[..., Any]:
    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        origin = _origin(exc)
        if origin is not None and isinstance(exc, Exception) and not _is_shutdown_flow(exc):
            kind, name, starter_context = origin
            report(exc, exc.__traceback__, kind=kind, name=name, soft=False, context=starter_context)
        elif isinstance(exc, Exception) and not _is_shutdown_flow(exc):
            future = context.get("future") or context.get("task")
            get_context = getattr(future, "get_context", None)  # Python 3.12+
            # A callback's Handle keeps the context it was scheduled in (the request's).
            starter = (
                get_context() if callable(get_context) else getattr(context.get("handle"), "_context", None)
            )
            report(
                exc,
                exc.__traceback__,
                kind="asyncio",
                name=str(context.get("message") or "asyncio")[:200],
                soft=False,
                context=starter if isinstance(starter, contextvars.Context) else None,
            )
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    setattr(handler, _ORIGINAL, previous)
    return handler


def _origin(exc: object) -> Optional[tuple[str, str, Optional[contextvars.Context]]]:
    try:
        origin = vars(exc).get(_ORIGIN)
    except TypeError:
        return None
    return origin if isinstance(origin, tuple) else None


# A server's own shutdown control flow, raised at every graceful stop: never an issue.
_SHUTDOWN_FLOW = frozenset(
    {("hypercorn.utils", "ShutdownError"), ("hypercorn.utils", "LifespanTimeoutError")}
)


def _is_shutdown_flow(exc: BaseException) -> bool:
    return any((cls.__module__, cls.__qualname__) in _SHUTDOWN_FLOW for cls in type(exc).__mro__)


def install_loop_hooks(loop: Optional[asyncio.AbstractEventLoop] = None) -> bool:
    """Hook the running loop (or ``loop``) once; True when hooks were added now."""
    try:
        loop = loop or asyncio.get_running_loop()
    except RuntimeError:
        return False
    if getattr(loop, _LOOP_MARK, False) or not _enabled():
        return False
    previous_factory = loop.get_task_factory()

    def task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
        if previous_factory is not None:
            task = previous_factory(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        task.add_done_callback(_task_done)
        return task

    loop.set_task_factory(task_factory)  # type: ignore[arg-type]
    loop.set_exception_handler(_loop_exception_handler(loop.get_exception_handler()))
    with contextlib.suppress(AttributeError):  # a loop type with __slots__: at worst hooked twice
        setattr(loop, _LOOP_MARK, True)
    return True


# -- threads and executors ------------------------------------------------------------------------


def _patch_threads() -> None:
    original_start = threading.Thread.start
    if getattr(original_start, _ORIGINAL, None) is None:

        @functools.wraps(original_start)
        def start(self: threading.Thread) -> None:
            with contextlib.suppress(Exception):  # never stand between a thread and its start
                setattr(self, _CONTEXT, contextvars.copy_context())
            original_start(self)

        setattr(start, _ORIGINAL, original_start)
        threading.Thread.start = start  # type: ignore[method-assign]

    previous_hook = threading.excepthook
    if getattr(previous_hook, _ORIGINAL, None) is None:

        def excepthook(args: Any) -> None:
            thread = args.thread
            if args.exc_value is not None and not str(getattr(thread, "name", "")).startswith("otel_sentry"):
                report(
                    args.exc_value,
                    args.exc_traceback,
                    kind="thread",
                    name=str(getattr(thread, "name", "thread")),
                    soft=False,
                    context=getattr(thread, _CONTEXT, None),
                )
            previous_hook(args)

        setattr(excepthook, _ORIGINAL, previous_hook)
        threading.excepthook = excepthook


class _Job:
    """One executor job: what it raised, and whether anybody asked for the outcome."""

    __slots__ = ("context", "error", "name", "retrieved")

    def __init__(self, context: contextvars.Context, name: str) -> None:
        self.context = context
        self.name = name
        self.error: Optional[BaseException] = None
        self.retrieved = False

    def collected(self) -> None:
        """The future is gone: an exception nobody retrieved is an error of the background work."""
        error, self.error = self.error, None
        if error is not None and not self.retrieved:
            report(
                error, error.__traceback__, kind="executor", name=self.name, soft=False, context=self.context
            )


def _run_reporting(job: _Job, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        job.error = exc
        # awaited through asyncio (run_in_executor), asyncio's own "never retrieved" check decides
        _remember_origin(exc, "executor", job.name, job.context)
        raise


def _mark_retrieved(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        job = self.__dict__.get("_otel_sentry_job")
        if job is not None:
            job.retrieved = True
        return original(self, *args, **kwargs)

    setattr(read, _ORIGINAL, original)
    return read


def _patch_executor() -> None:
    original: Callable[..., Any] = concurrent.futures.ThreadPoolExecutor.submit
    if getattr(original, _ORIGINAL, None) is not None:
        return

    @functools.wraps(original)
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        job = _Job(contextvars.copy_context(), _name_of(fn))
        future = original(self, _run_reporting, job, fn, *args, **kwargs)
        with contextlib.suppress(Exception):
            future.__dict__["_otel_sentry_job"] = job
            finalizer = weakref.finalize(future, job.collected)
            finalizer.atexit = False
        return future

    setattr(submit, _ORIGINAL, original)
    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
    for name in ("result", "exception"):
        current = getattr(concurrent.futures.Future, name)
        if getattr(current, _ORIGINAL, None) is None:
            setattr(concurrent.futures.Future, name, _mark_retrieved(current))


def _unpatch_threads_and_executor() -> None:
    for owner, name in (
        (threading.Thread, "start"),
        (concurrent.futures.ThreadPoolExecutor, "submit"),
        (concurrent.futures.Future, "result"),
        (concurrent.futures.Future, "exception"),
    ):
        original = getattr(getattr(owner, name), _ORIGINAL, None)
        if original is not None:
            setattr(owner, name, original)
    previous = getattr(threading.excepthook, _ORIGINAL, None)
    if previous is not None:
        threading.excepthook = previous


# -- wiring ---------------------------------------------------------------------------------------


def _patched_build_middleware_stack(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The app builds its stack on its first ASGI call, inside the server's running loop."""

    @functools.wraps(original)
    def build_middleware_stack(self: Any) -> Any:
        stack = original(self)
        try:
            install_loop_hooks()
            from . import _debug_route

            _debug_route.add_to(self)
        except Exception:
            logger.warning("otel_sentry: could not install background hooks", exc_info=True)
        return stack

    setattr(build_middleware_stack, _ORIGINAL, original)
    return build_middleware_stack


class BackgroundCaptureInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Background tasks, asyncio loop hooks and the debug route for Starlette and FastAPI apps."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("starlette >= 0.27",)

    def _instrument(self, **kwargs: Any) -> None:
        from ._starlette import _app_classes

        _patch_background_task()
        for cls in _app_classes():
            current = cls.__dict__["build_middleware_stack"]
            if getattr(current, _ORIGINAL, None) is None:
                cls.build_middleware_stack = _patched_build_middleware_stack(current)

    def _uninstrument(self, **kwargs: Any) -> None:
        from ._starlette import _app_classes

        _unpatch_background_task()
        for cls in _app_classes():
            original = getattr(cls.__dict__["build_middleware_stack"], _ORIGINAL, None)
            if callable(original):
                cls.build_middleware_stack = original


def install() -> None:
    """Process-wide hooks (threads, executors) and, when Starlette is there, the app hooks."""
    global _installed
    if not _enabled():
        return
    if not _installed:
        _installed = True
        _patch_threads()
        _patch_executor()
    try:
        # Patched directly (idempotent): going through instrument() here would make the
        # opentelemetry-instrument entry point's own instrument() call log "already instrumented".
        BackgroundCaptureInstrumentor()._instrument()
    except ImportError:
        logger.debug("otel_sentry: starlette is not installed; no background task hooks")


def uninstall() -> None:
    global _installed
    _installed = False
    _unpatch_threads_and_executor()
    BackgroundCaptureInstrumentor().uninstrument()
