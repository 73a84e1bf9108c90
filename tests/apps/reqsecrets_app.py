"""An app whose own code makes the request's credential reappear, as real auth code does by accident.

``POST /r/{carrier}``: the credential is read from where the carrier puts it (Basic, bearer, cookie,
API-key header, query parameter, JSON or form body field), encoded as ``x-enc`` says, and made to
reappear as ``x-place`` says under the name ``x-name`` (a random name, on no sensitive-name list):
a frame local, an exception message, a log argument, a span attribute or event, a nested container,
an object's repr, or a background task that fails after the response. A benign value (``x-benign``)
rides along to measure false positives.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from typing import Any, Callable

from fastapi import BackgroundTasks, FastAPI, Request
from opentelemetry import trace

app = FastAPI()
log = logging.getLogger("reqsecrets_app")
_RAISERS: dict[str, Callable[[Any, str], None]] = {}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def encode(value: str, how: str) -> str:
    if how == "url":
        return urllib.parse.quote(value, safe="")
    if how == "json":
        return json.dumps({"k": value})
    if how == "base64":  # inside a bigger blob, at any alignment
        return base64.b64encode(f"{'x' * (len(value) % 3)}cred={value};".encode()).decode()
    if how == "hex":
        return value.encode().hex()
    return value


def raiser(name: str) -> Callable[[Any, str], None]:
    """A function with a real local variable called ``name`` holding the value, that raises."""
    if name not in _RAISERS:
        namespace: dict[str, Any] = {}
        body = f"    {name} = value\n    raise RuntimeError('login failed ' + benign)\n"
        source = "def fail(value, benign):\n" + body
        exec(compile(source, f"<auth_{name}>", "exec"), namespace)
        _RAISERS[name] = namespace["fail"]
    return _RAISERS[name]


class Connection:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def __repr__(self) -> str:
        return f"<Connection {self.dsn}>"


async def credential(carrier: str, request: Request) -> str:
    headers = request.headers
    if carrier == "basic":
        creds = headers["authorization"].split(" ", 1)[1]
        auth_string = base64.b64decode(creds).decode()
        return auth_string.split(":", 1)[1]
    if carrier == "basic_pair":
        return base64.b64decode(headers["authorization"].split(" ", 1)[1]).decode()
    if carrier == "basic_b64":
        return headers["authorization"].split(" ", 1)[1]
    if carrier == "bearer":
        return headers["authorization"].split(" ", 1)[1]
    if carrier == "cookie":
        return request.cookies["session"]
    if carrier == "apikey":
        return headers["x-api-key"]
    if carrier == "query":
        return request.query_params["access_token"]
    if carrier == "json":
        return str((await request.json())["credentials"]["password"])
    if carrier == "form":
        form = urllib.parse.parse_qs((await request.body()).decode())  # no python-multipart needed
        return form["client_secret"][0]
    if carrier == "multipart":  # an upload form: the secret beside a file
        return str((await request.form())["client_secret"])
    raise ValueError(carrier)


def reappear(place: str, name: str, encoded: str, benign: str, tasks: BackgroundTasks) -> None:
    span = trace.get_current_span()
    span.set_attribute("app.order_ref", benign)
    if place == "locals":
        raiser(name)(encoded, benign)
    if place == "message":
        raise RuntimeError(f"upstream refused {encoded} for order {benign}")
    if place == "log":
        log.error("auth failed for %s (order %s)", encoded, benign)
        raise RuntimeError(f"login failed {benign}")
    if place == "span_attr":
        span.set_attribute(f"app.{name}", encoded)
        span.add_event("checked", {name: encoded, "order": benign})
        raise RuntimeError(f"login failed {benign}")
    if place == "nested":
        context = {name: [{"deep": (encoded, benign)}], "order": benign}
        raise RuntimeError(f"login failed {len(context)}")
    if place == "repr":
        connection = Connection(f"db://{encoded}@db/{benign}")
        raise RuntimeError(f"cannot use {connection!r}")
    if place == "background":
        tasks.add_task(background, name, encoded, benign)
        return
    raise ValueError(place)


def background(name: str, encoded: str, benign: str) -> None:
    with trace.get_tracer("reqsecrets_app").start_as_current_span("background") as span:
        span.set_attribute(f"job.{name}", encoded)
        log.warning("job for %s", encoded)
        raiser(name)(encoded, benign)


@app.post("/r/{carrier}")
async def route(carrier: str, request: Request, tasks: BackgroundTasks) -> dict[str, str]:
    value = await credential(carrier, request)
    headers = request.headers
    encoded = encode(value, headers["x-enc"])
    reappear(headers["x-place"], headers["x-name"], encoded, headers["x-benign"], tasks)
    return {"status": "queued"}


@app.post("/v1/chat/completions")
async def chat(request: Request) -> None:
    """An inference route failing with nothing that names a model but the request body."""
    await request.json()
    raise RuntimeError("completion failed")


@app.post("/body")
async def body(request: Request) -> None:
    """Fails after reading its body, whatever it is: the body oracle compares request.data."""
    await request.body()
    raise RuntimeError("body route failed")
