"""Apps whose size the growth bench (bench/growth.py) turns up: many routes, deep tracebacks, many
locals. A module of its own so its frames are the app's (in-app), as a user's would be."""

from __future__ import annotations

import os
from typing import Any, Callable

from fastapi import FastAPI


def _instrument_if_lean(app: FastAPI) -> FastAPI:
    if os.environ.get("BENCH_LEAN") == "1":  # stock lean instruments the app itself (_peer_app.py)
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    return app


def routes_app(n: int) -> FastAPI:
    """n routes ``/v1/r{i}/items/{item_id}``, each its own template (http.route)."""
    app = FastAPI()

    def add(i: int) -> None:
        async def handler(item_id: str) -> dict[str, Any]:
            return {"route": i, "id": item_id}

        app.get(f"/v1/r{i}/items/{{item_id}}", name=f"r{i}")(handler)

    for i in range(n):
        add(i)
    return _instrument_if_lean(app)


_raisers: dict[int, Callable[[], None]] = {}


def _raiser(n_locals: int) -> Callable[[], None]:
    """A function with n_locals local variables (strings, ints, a dict) that raises KeyError."""
    raiser = _raisers.get(n_locals)
    if raiser is None:
        lines = [f"    v{i} = {('item-' + str(i)) if i % 3 else i!r}" for i in range(n_locals)]
        if n_locals:
            lines.append(f"    table = {{'k{n_locals}': v{n_locals - 1}}}")
        else:
            lines.append("    table = {}")
        source = "def raiser():\n" + "\n".join(lines) + "\n    return table['missing']\n"
        namespace: dict[str, Any] = {"__name__": __name__}
        exec(compile(source, __file__ + f":raiser{n_locals}", "exec"), namespace)
        raiser = namespace["raiser"]
        _raisers[n_locals] = raiser
    return raiser


def _dig(depth: int, n_locals: int) -> None:
    if depth <= 1:
        _raiser(n_locals)()
    else:
        _dig(depth - 1, n_locals)


def error_app() -> FastAPI:
    """``GET /fail?depth=D&locals=L``: raises KeyError D frames below the handler, in a frame with L
    locals."""
    app = FastAPI()

    @app.get("/fail")
    async def fail(depth: int = 10, locals: int = 5) -> dict[str, Any]:
        _dig(depth, locals)
        return {}

    return _instrument_if_lean(app)
