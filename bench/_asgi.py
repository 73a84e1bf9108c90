"""A hand-written ASGI driver: requests straight into an app, no sockets, no server.

What the in-process benchmarks time is then the app and its instrumentation only: no uvicorn, no
HTTP parsing, no loopback. An app that lets an exception escape (Starlette re-raises after its 500
response) is counted by the status it sent.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

Header = tuple[bytes, bytes]


def http_scope(method: str, path: str, headers: list[Header], query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def call(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    authorization: Optional[bytes] = None,
    *,
    query: bytes = b"",
) -> int:
    """One request; returns the response status (0 when none was sent)."""
    headers: list[Header] = [
        (b"host", b"bench.local"),
        (b"user-agent", b"bench/1"),
        (b"accept", b"application/json"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if authorization:
        headers.append((b"authorization", authorization))
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    try:
        await app(http_scope(method, path, headers, query), receive, send)
    except Exception:
        if not status:
            raise
    return status
