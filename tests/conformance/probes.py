"""The requests sent to each conformance app, with the status and the one event each must give."""

from __future__ import annotations

from tests.conformance.harness import Expect, Probe

ANY = None  # a status no client can predict (a stream cut mid-way: some servers close, some finish)


def shapes(prefix: str = "") -> list[Probe]:
    """``apps/shapes.py``; ``prefix``: the server's --root-path (events show the client's URL)."""

    def fail(path: str, route: str, exception: str | None = "ShapeError", status: int = 500) -> Probe:
        return Probe("GET", path, status, Expect(route, prefix + path, exception))

    return [
        Probe("GET", "/ok", 200),
        Probe("GET", "/v2/items/1", 200),
        fail("/v2/items/13", "/v2/items/{item_id}"),
        Probe("GET", "/v2/nested/deep/x", 200),
        fail("/v2/nested/deep/boom", "/v2/nested/deep/{name}"),
        fail("/boom", "/boom"),
        fail("/http-500", "/http-500"),
        Probe("GET", "/http-404", 404),
        Probe("GET", "/validation/abc", 422),
        fail("/self-500", "/self-500"),
        fail("/self-503", "/self-503", exception=None, status=503),
        Probe("GET", "/logged-4xx", 400),
        Probe("GET", "/health", 200),
        # not a 5xx, but a true issue: a background job nobody awaited failed
        Probe(
            "GET",
            "/fire-and-forget",
            200,
            Expect("/fire-and-forget", prefix + "/fire-and-forget", "ShapeError"),
        ),
        Probe("GET", "/stream-fail", ANY, Expect("/stream-fail", prefix + "/stream-fail", "ShapeError")),
        Probe("GET", "/ws", 101, websocket="hello"),
        Probe("GET", "/ws", 101, Expect("/ws", prefix + "/ws", "ShapeError"), websocket="boom"),
        fail("/v1/chat/completions", "/v1/chat/completions", "ProviderAPIError"),
        fail("/v1/embeddings", "/v1/embeddings", "ModuleNotFoundError"),
        fail("/sub/boom", "/sub/boom"),
        Probe("GET", "/sub/things/a", 200),
        fail("/plain/boom", "/plain/boom"),
        Probe("GET", "/plain/say/hi", 200),
    ]


def catchall() -> list[Probe]:
    return [
        Probe("GET", "/ok", 200),
        Probe("GET", "/missing/key", 404),
        Probe("GET", "/crash", 500, Expect("/crash", "/crash", "CrashError")),
    ]
