"""An app with its own catch-all error handling, as many codebases have: a handler for Exception
(Starlette puts it on ServerErrorMiddleware, outside every other middleware) that maps some errors to
4xx and the rest to a JSON 500, plus a route-level ``except Exception: return 500``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class NotFoundError(Exception):
    pass


class CrashError(Exception):
    pass


app = FastAPI()


@app.exception_handler(Exception)
async def catch_all(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, NotFoundError):
        return JSONResponse({"error": "not found"}, status_code=404)
    return JSONResponse({"error": "internal", "kind": type(exc).__name__}, status_code=500)


@app.get("/ok")
async def ok() -> dict[str, bool]:
    return {"ok": True}


@app.get("/missing/{key}")
async def missing(key: str) -> None:
    raise NotFoundError(f"no {key}")


@app.get("/crash")
async def crash() -> None:
    raise CrashError("catch-all maps me to 500")
