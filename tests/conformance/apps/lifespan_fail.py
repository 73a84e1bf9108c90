"""An app whose startup fails: the server refuses to start and the error must be one event."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI


class StartupError(Exception):
    pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    raise StartupError("database url missing at startup")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}
