"""Shutdown that delivers or counts what is queued, within one budget, however the process stops.

``atexit`` is not enough: uvicorn re-raises SIGTERM with the default action after its graceful
shutdown, and gunicorn's uvicorn workers die the same way, so ``atexit`` handlers (the OpenTelemetry
SDK's and ours) never run on the signal every orchestrator sends. Three hooks share one deadline
(``OTEL_SENTRY_SHUTDOWN_TIMEOUT`` from the first of them), so together they never take longer:

* the ASGI lifespan shutdown (every worker of every ASGI server runs it): spans still in the SDK's
  batch processors are flushed into the transports, and the transports drained;
* a SIGTERM handler installed at configure time, when the previous one was the default action: it
  shuts down (delivers, spools, counts) and then re-raises SIGTERM with the default action, so the exit
  status is unchanged. A handler the app installed itself is called after our flush, never replaced;
* ``atexit`` (SIGINT, a normal exit, a gunicorn master).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any, Awaitable, Callable, Optional, Union

logger = logging.getLogger("otel_sentry")

_deadline: Optional[float] = None
_deadline_lock = threading.Lock()
_installed = False

Handler = Union[Callable[[int, Optional[FrameType]], Any], int, None]


def remaining(timeout: float) -> float:
    """Seconds left of this process's shutdown budget; the first caller starts the clock."""
    global _deadline
    with _deadline_lock:
        if _deadline is None:
            _deadline = time.monotonic() + timeout
        return max(0.0, _deadline - time.monotonic())


def _reset_budget() -> None:
    global _deadline
    _deadline = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_budget)


def flush_span_processors(timeout: float) -> None:
    """Push spans and log records still in the SDK's batch processors to their exporters, all at once
    and bounded: the SDK's own ``force_flush`` ignores its timeout, and a hung collector would block it."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    multi = getattr(provider, "_active_span_processor", None)
    processors = list(getattr(multi, "_span_processors", ()) or ())
    flushes: list[Callable[[], Any]] = [p.force_flush for p in processors]
    try:  # log records wait in the SDK's batch processor too (OTEL_LOGS_EXPORTER=sentry)
        from opentelemetry import _logs

        logger_flush = getattr(_logs.get_logger_provider(), "force_flush", None)
        if callable(logger_flush):
            flushes.append(logger_flush)
    except ImportError:  # pragma: no cover - the logs API ships with opentelemetry-api
        pass
    from . import _sentry_logs

    private = _sentry_logs._provider  # Sentry log items from every logger (OTEL_LOGS_EXPORTER=sentry)
    if private is not None:
        flushes.append(private.force_flush)
    threads = [threading.Thread(target=flush, name="otel_sentry.flush", daemon=True) for flush in flushes]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def drain(*, close: bool) -> bool:
    """Flush spans into the transports, then deliver what is queued within the remaining budget;
    what is left is spooled or counted (one line). ``close`` also stops the transports."""
    from ._runtime import get_runtime

    runtime = get_runtime()
    if runtime is None:
        return True
    budget = remaining(runtime.settings.shutdown_timeout)
    # Our exporter only serializes and queues, so its share is small; a hung collector's is capped.
    flush_span_processors(min(budget / 2, 1.0))
    if close:
        runtime.shutdown(remaining(runtime.settings.shutdown_timeout))
        return True
    delivered = runtime.drain(remaining(runtime.settings.shutdown_timeout))
    if delivered:
        _reset_budget()  # the process may go on (an app under TestClient starts up again)
    return delivered


# -- ASGI lifespan --------------------------------------------------------------------------------
def lifespan_send(send: Callable[[dict[str, Any]], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Wrap a lifespan ``send`` so the app's shutdown completing drains the transports first."""

    async def send_after_draining(message: dict[str, Any]) -> None:
        if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            import asyncio

            try:
                await asyncio.get_running_loop().run_in_executor(None, lambda: drain(close=False))
            except Exception:
                logger.exception("otel_sentry: internal error while draining at shutdown")
        await send(message)

    return send_after_draining


# -- SIGTERM ------------------------------------------------------------------------------------------
def _on_sigterm(previous: Handler) -> Callable[[int, Optional[FrameType]], None]:
    def handler(signum: int, frame: Optional[FrameType]) -> None:
        if callable(previous):
            # The app's own handler decides what SIGTERM means (it may not even exit): deliver what
            # is queued, keep the transports open, then hand over.
            try:
                drain(close=False)
            except Exception:
                logger.exception("otel_sentry: internal error while draining on SIGTERM")
            previous(signum, frame)
            return
        try:
            drain(close=True)
        except Exception:
            logger.exception("otel_sentry: internal error while shutting down on SIGTERM")
        # The default action, as if we had never been here: the exit status says "killed by SIGTERM".
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    return handler


def install_sigterm_handler() -> bool:
    """Chain our handler in front of the current one; only from the main thread, only once, and
    never over a handler that ignores SIGTERM."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return False
    try:
        signal.signal(signal.SIGTERM, _on_sigterm(previous))
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return False
    _installed = True
    return True
