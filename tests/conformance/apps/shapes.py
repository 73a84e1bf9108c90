"""App shapes real codebases have and no other test app has: routers with prefixes, nested routers,
mounts (FastAPI and Starlette), own BaseHTTPMiddleware, websockets, streaming failure, background
work awaited and not awaited, self-made 5xx. Every route's outcome is fixed, so a run under stock
OpenTelemetry and one under otel_sentry must answer the same and the events are predictable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, HTTPException, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.routing import Route

log = logging.getLogger("shapes")


class ShapeError(Exception):
    """The exception every failing route raises, named after where it was raised."""


class Tagging(BaseHTTPMiddleware):
    """An app's own BaseHTTPMiddleware (the seeds have one)."""

    async def dispatch(self, request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers["x-shape"] = "1"
        return response


app = FastAPI()
app.add_middleware(Tagging)

items = APIRouter()
nested = APIRouter()


@items.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    if item_id == 13:
        raise ShapeError("router item 13")
    return {"item_id": item_id}


@nested.get("/deep/{name}")
async def deep(name: str) -> dict[str, str]:
    if name == "boom":
        raise ShapeError("nested deep boom")
    return {"name": name}


items.include_router(nested, prefix="/nested")
app.include_router(items, prefix="/v2")


@app.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}


@app.get("/boom")
async def boom() -> None:
    raise ShapeError("top-level boom")


@app.get("/http-500")
async def http_500() -> None:
    try:
        raise ShapeError("wrapped in HTTPException 500")
    except ShapeError as exc:
        raise HTTPException(status_code=500, detail="upstream failed") from exc


@app.get("/http-404")
async def http_404() -> None:
    raise HTTPException(status_code=404, detail="no such thing")


@app.get("/validation/{number}")
async def validation(number: int) -> dict[str, int]:
    return {"number": number}


@app.get("/self-500")
async def self_500() -> JSONResponse:
    try:
        raise ShapeError("caught, answered 500 by hand")
    except ShapeError:
        return JSONResponse({"error": "internal"}, status_code=500)


@app.get("/self-503")
async def self_503() -> JSONResponse:
    return JSONResponse({"error": "maintenance"}, status_code=503)


@app.get("/logged-4xx")
async def logged_4xx() -> JSONResponse:
    try:
        raise ShapeError("bad input parsed")
    except ShapeError:
        log.exception("could not parse the request")
    return JSONResponse({"error": "bad request"}, status_code=400)


def _flaky(n: int) -> int:
    if n % 2:
        raise ShapeError(f"backend {n} down")
    return n


@app.get("/health")
async def health() -> dict[str, list[str]]:
    """Calls several backends, reports which failed: every exception is retrieved and handled."""
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [loop.run_in_executor(pool, _flaky, n) for n in range(4)]
        results = await asyncio.gather(*jobs, return_exceptions=True)

    async def probe(n: int) -> int:
        await asyncio.sleep(0)
        return _flaky(n)

    tasks = [asyncio.create_task(probe(n)) for n in range(4)]
    failed = [str(r) for r in results if isinstance(r, Exception)]
    for task in tasks:
        try:
            await task
        except ShapeError as exc:
            failed.append(str(exc))
    return {"failed": failed}


_background_tasks: set[asyncio.Task[None]] = set()


@app.get("/fire-and-forget")
async def fire_and_forget() -> dict[str, bool]:
    async def job() -> None:
        await asyncio.sleep(0.01)
        raise ShapeError("background job nobody awaited")

    task = asyncio.create_task(job())
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)
    return {"started": True}


@app.get("/stream-fail")
async def stream_fail() -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        raise ShapeError("stream broke mid-way")

    return StreamingResponse(body(), media_type="text/plain")


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    if text == "boom":
        raise ShapeError("websocket boom")
    await websocket.send_text(text)
    await websocket.close()


class ProviderAPIError(Exception):
    """How LLM client libraries fail: the provider and model on the exception itself."""

    def __init__(self, message: str, llm_provider: str, model: str) -> None:
        super().__init__(message)
        self.llm_provider, self.model = llm_provider, model


@app.get("/v1/chat/completions")
async def chat() -> None:
    raise ProviderAPIError("rate limited", llm_provider="anthropic", model="claude-3-5-haiku")


@app.get("/v1/embeddings")
async def embeddings() -> None:
    import tiktoken_not_installed  # type: ignore[import-not-found]  # noqa: F401 - a deploy missing a package


# A FastAPI sub-app and a Starlette sub-app, mounted.
sub = FastAPI()


@sub.get("/boom")
async def sub_boom() -> None:
    raise ShapeError("sub-app boom")


@sub.get("/things/{thing}")
async def sub_thing(thing: str) -> dict[str, str]:
    return {"thing": thing}


async def plain_boom(request: Request) -> PlainTextResponse:
    raise ShapeError("starlette sub-app boom")


async def plain_ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("plain " + request.path_params["word"])


plain = Starlette(routes=[Route("/boom", plain_boom), Route("/say/{word}", plain_ok)])

app.mount("/sub", sub)
app.mount("/plain", plain)
