# ruff: noqa: SIM105, RUF006  (the planted gaps are the point of this file)
"""Services: a provider client (the seeds' detection rules give it context_type=provider)."""

import asyncio
import contextlib
import logging
from asyncio import create_task as spawn
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import httpx
from openai.types.beta import Thread

from app.utils import capture_provider_error, task_manager

logger = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2)
_tasks: set = set()


async def make_provider_request(provider: str, model: str) -> dict:  # PLANTED: undecorated-capture-candidate
    async with httpx.AsyncClient() as client:
        response = await client.post(f"https://{provider}.example/v1", json={"model": model})
        return response.json()


async def list_models() -> list:  # PLANTED: undecorated-capture-candidate
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get("https://models.example")).json()
    except httpx.HTTPError:
        return []  # PLANTED: error-to-default


async def get_model(model_id: str) -> dict:  # PLANTED: undecorated-capture-candidate
    try:
        return (await list_models())[0]
    except IndexError:
        return {}  # CLEAN (expected: an empty list)


async def fetch_balance(user_id: str) -> float:  # CLEAN (captures itself)
    try:
        return await _call("balance", user_id)
    except Exception as exc:
        capture_provider_error(exc, provider="billing", model=None)  # CLEAN (captured)
        return 0.0


async def fetch_history(user_id: str) -> list:  # PLANTED: undecorated-capture-candidate
    asyncio.create_task(_warm_cache(user_id))  # PLANTED: task-not-retrieved
    task = asyncio.create_task(_call("history", user_id))  # CLEAN (awaited below)
    _tasks.add(asyncio.create_task(_warm_cache(user_id)))  # PLANTED: task-not-retrieved
    spawn(_warm_cache(user_id))  # PLANTED: task-not-retrieved
    task_manager.create_task(_warm_cache(user_id))  # CLEAN (the app's own task manager)
    return await task


async def refresh_all(users: list) -> None:  # PLANTED: undecorated-capture-candidate
    async with asyncio.TaskGroup() as group:
        for user in users:
            group.create_task(_warm_cache(user))  # CLEAN (the task group re-raises)
    jobs = [asyncio.create_task(_warm_cache(u)) for u in users]
    await asyncio.gather(*jobs)  # CLEAN (gathered)


def export_usage(rows: list) -> None:  # PLANTED: undecorated-capture-candidate
    _pool.submit(_write, rows)  # PLANTED: executor-not-retrieved
    future = _pool.submit(_write, rows)
    future.result()  # CLEAN (read)
    with ProcessPoolExecutor() as processes:
        processes.submit(_write, rows)  # PLANTED: executor-not-retrieved-process


def warm_up() -> None:  # PLANTED: undecorated-capture-candidate
    with contextlib.suppress(Exception):  # PLANTED: swallowed-exception
        _write([])
    with contextlib.suppress(FileNotFoundError):  # CLEAN (expected)
        _write([])
    loop = asyncio.get_event_loop()
    loop.run_in_executor(None, _write, [])  # PLANTED: executor-not-retrieved


async def _call(what: str, user_id: str) -> float:
    return 0.0


async def _warm_cache(user_id: str) -> None:
    return None


def _write(rows: list) -> None:
    return None


async def shutdown(client: httpx.AsyncClient) -> None:  # PLANTED: undecorated-capture-candidate
    try:
        await client.aclose()
    except Exception:  # CLEAN (releasing a resource)
        pass


def parse_amount(raw: str):  # PLANTED: undecorated-capture-candidate
    try:
        return float(raw)
    except Exception:  # CLEAN (a parse of input: 'not valid' is the answer)
        return None


async def poll(event: asyncio.Event) -> None:  # PLANTED: undecorated-capture-candidate
    while not event.is_set():
        try:
            await asyncio.wait_for(event.wait(), timeout=30)
        except asyncio.TimeoutError:  # CLEAN (a timeout used as a poll)
            continue


async def _completion_or_error(model: str):
    try:
        return await make_provider_request("openrouter", model)
    except Exception as exc:  # CLEAN (the exception is handed to the caller as a value)
        return exc


def _debug(message: str) -> None:
    try:
        logger.debug(message)
    except Exception:  # CLEAN (a failure of the logging itself)
        pass


def _as_thread(data: dict) -> Thread:
    return Thread(**data)  # CLEAN (OpenAI's Thread type, not threading's)
