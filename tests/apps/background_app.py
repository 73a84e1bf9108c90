"""A FastAPI app whose failures happen in background work, plus the capture API used in routes.

It knows nothing about otel_sentry's instrumentation (that comes from ``opentelemetry-instrument``);
it only imports the seeds-compatible helpers, as ported code would. Every route returns the trace id
of its server span so tests can check which trace each event joined.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException
from opentelemetry import trace

from otel_sentry.auto_sentry import auto_capture_errors
from otel_sentry.sentry_context import capture_payment_error

logger = logging.getLogger("background_app")
logging.basicConfig(level=logging.INFO)
app = FastAPI()
_executor = concurrent.futures.ThreadPoolExecutor(max_workers=2)
_keep: set[asyncio.Task[Any]] = set()

if os.environ.get("APP_SENTRY_SDK_DSN"):
    import sentry_sdk

    sentry_sdk.init(dsn=os.environ["APP_SENTRY_SDK_DSN"], traces_sample_rate=1.0)


def trace_id() -> dict[str, str]:
    return {"trace_id": f"{trace.get_current_span().get_span_context().trace_id:032x}"}


class LedgerError(Exception):
    """The credit ledger refused an operation."""


def failing_sync_job(user_id: int) -> None:
    raise LedgerError(f"sync background job failed for user {user_id}")


async def failing_async_job(user_id: int) -> None:
    await asyncio.sleep(0)
    raise LedgerError(f"async background job failed for user {user_id}")


async def late_failure(delay: float, label: str) -> None:
    await asyncio.sleep(delay)
    raise LedgerError(f"{label} failed after the response")


async def fail_now(label: str) -> None:
    raise ValueError(label)


def thread_job() -> None:
    raise LedgerError("thread job failed")


def executor_job(n: int) -> int:
    raise LedgerError(f"executor job {n} failed")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/bg-tasks")
async def bg_tasks(background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(failing_sync_job, 7)
    return trace_id()


@app.get("/bg-async-task")
async def bg_async_task(background_tasks: BackgroundTasks) -> dict[str, str]:
    background_tasks.add_task(failing_async_job, 8)
    return trace_id()


@app.get("/fire-and-forget")
async def fire_and_forget() -> dict[str, str]:
    task = asyncio.create_task(late_failure(0.3, "fire-and-forget task"))
    _keep.add(task)
    task.add_done_callback(_keep.discard)
    return trace_id()


@app.get("/gather")
async def gather() -> dict[str, str]:
    # The route handles the first failure; the second one is only visible to otel_sentry.
    with contextlib.suppress(ValueError):
        await asyncio.gather(asyncio.sleep(0), fail_now("gather child a"), fail_now("gather child b"))
    await asyncio.sleep(0.05)
    return trace_id()


@app.get("/task-group")
async def task_group() -> dict[str, str]:
    async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined]
        group.create_task(fail_now("group child 1"))
        group.create_task(fail_now("group child 2"))
    return trace_id()


@app.get("/awaited-task")
async def awaited_task() -> dict[str, str]:
    await asyncio.create_task(fail_now("awaited task"))
    return trace_id()


@app.get("/thread")
async def thread() -> dict[str, str]:
    threading.Thread(target=thread_job, name="report-thread").start()
    return trace_id()


@app.get("/executor")
async def executor() -> dict[str, str]:
    _executor.submit(executor_job, 3)  # nobody ever looks at the future
    return trace_id()


@app.get("/loop-callback")
async def loop_callback() -> dict[str, str]:
    def callback() -> None:
        raise LedgerError("loop callback failed")

    asyncio.get_running_loop().call_soon(callback)
    await asyncio.sleep(0.05)
    return trace_id()


# -- the capture API in routes ---------------------------------------------------------------------


@auto_capture_errors
def deduct_credits(user_id: int, amount: float, api_key: str) -> None:
    raise LedgerError(f"balance too low for user {user_id}")


@app.get("/decorated-wrapped")
async def decorated_wrapped() -> dict[str, str]:
    try:
        deduct_credits(42, 1.5, api_key="sk-proj-abcdefghijklmnopqrstuvwx")
    except LedgerError as e:
        raise HTTPException(status_code=500, detail="payment failed") from e
    return trace_id()


@app.get("/helper-then-503")
async def helper_then_503() -> dict[str, str]:
    try:
        raise LedgerError("stripe declined the card")
    except LedgerError as e:
        capture_payment_error(e, operation="credit_deduction", user_id="42", amount=3.5)
        raise HTTPException(status_code=503, detail="Payment provider unavailable") from e


@app.get("/log-then-500")
async def log_then_500() -> dict[str, str]:
    logger.info("looking up the user")
    logger.warning("cache miss for user 42")
    try:
        raise KeyError("user 42")
    except KeyError as e:
        logger.error("lookup failed: %s", e, exc_info=True)
        raise HTTPException(status_code=500, detail=f"Error: {e}") from e


@app.get("/swallowed")
async def swallowed() -> dict[str, Any]:
    logger.info("loading the price table")
    try:
        {}["price"]
    except KeyError as e:
        logger.error(f"Failed to load prices: {e}")  # the audit's swallowed-error pattern
        return {"prices": None, **trace_id()}
    return trace_id()


@app.get("/log-message")
async def log_message() -> dict[str, str]:
    logger.error("quota nearly exhausted for user %s", 42)
    return trace_id()


@app.get("/ok")
async def ok() -> dict[str, str]:
    logger.info("all good")
    return trace_id()
