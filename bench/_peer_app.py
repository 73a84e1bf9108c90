"""The app every configuration of bench/overhead.py serves: a small LLM-gateway-shaped FastAPI app.

Four routes, one per thing the bench prices: a general route (the seeds' 10% rule), chat completions
with a JSON body and a bearer key (20%), health (0%), and an error route that raises three frames
deep with local variables (the cost of one captured error, frames and context lines included). An
auth dependency sets ``request.state.user_id``/``email``/``api_key_id`` as the seeds' app does, so
every configuration that reads user context has some to read.

``BENCH_LEAN=1`` is the stock-lean configuration: the FastAPI instrumentation is applied here, to
the app, with the ASGI ``http send``/``http receive`` spans excluded (the only way to exclude them).
``BENCH_SEEDS=1`` adds the seeds' middleware (bench/_seeds_setup.py).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    max_tokens: int = 256
    temperature: float = 1.0


def authenticate(request: Request) -> str:
    header = request.headers.get("authorization", "")
    key = header.removeprefix("Bearer ").strip()
    if key:
        request.state.user_id = "user-42"
        request.state.email = "dev@example.com"
        request.state.api_key_id = "key-7"
    return key


def _lookup_price(model: str, tokens: int) -> float:
    table = {"gpt-4o": 5.0, "claude-3": 3.0}
    return table[model] * tokens / 1_000_000  # KeyError for an unknown model: the error route


def _charge(user_id: str, model: str, tokens: int) -> float:
    balance = 10.0
    price = _lookup_price(model, tokens)
    return balance - price


app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/models/{model_id}")
async def model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "owned_by": "bench"}


@app.post("/v1/chat/completions")
async def chat(body: ChatRequest, key: str = Depends(authenticate)) -> dict[str, Any]:
    prompt_tokens = sum(len(m.content.split()) for m in body.messages)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1},
    }


@app.post("/v1/charge/{model_id}")
async def charge(model_id: str, request: Request, key: str = Depends(authenticate)) -> dict[str, Any]:
    tokens = 1200
    remaining = _charge(getattr(request.state, "user_id", "anonymous"), model_id, tokens)
    return {"remaining": remaining}


if os.environ.get("BENCH_SEEDS") == "1":
    from _seeds_setup import install_seeds_middleware

    install_seeds_middleware(app)

if os.environ.get("BENCH_LEAN") == "1":
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
