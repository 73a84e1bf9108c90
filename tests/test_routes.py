"""The full route template and the client's URL path, on the routing shapes real apps have."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Mount, Route

from otel_sentry._routes import route_template, url_path


def _ok(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def build() -> FastAPI:
    app = FastAPI()
    items, nested, deeper = APIRouter(), APIRouter(), APIRouter()

    @deeper.get("/leaf/{leaf_id}")
    def leaf(leaf_id: int) -> None: ...

    @nested.get("/deep/{name}")
    def deep(name: str) -> None: ...

    @items.get("/items/{item_id}")
    def item(item_id: int) -> None: ...

    @items.post("/items")
    def create() -> None: ...

    nested.include_router(deeper, prefix="/d")
    items.include_router(nested, prefix="/nested")
    app.include_router(items, prefix="/v2")

    @app.get("/boom")
    def boom() -> None: ...

    sub = FastAPI()

    @sub.get("/boom")
    def sub_boom() -> None: ...

    inner = Starlette(routes=[Route("/say/{word}", _ok), Mount("/deeper", routes=[Route("/x/{y}", _ok)])])
    app.mount("/sub", sub)
    app.mount("/plain", inner)
    app.router.routes.append(Host("api.example.com", app=Starlette(routes=[Route("/hosted/{n}", _ok)])))
    return app


APP = build()


def scope(path: str, method: str = "GET", root_path: str = "", host: str = "localhost") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": root_path + path,
        "root_path": root_path,
        "headers": [(b"host", host.encode())],
        "app": APP,
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/items/7", "/v2/items/{item_id}"),  # a router prefix (FastAPI >= 0.137 keeps it apart)
        ("/v2/nested/deep/x", "/v2/nested/deep/{name}"),
        ("/v2/nested/d/leaf/3", "/v2/nested/d/leaf/{leaf_id}"),
        ("/boom", "/boom"),
        ("/sub/boom", "/sub/boom"),  # not the top-level /boom
        ("/plain/say/hi", "/plain/say/{word}"),
        ("/plain/deeper/x/1", "/plain/deeper/x/{y}"),
        ("/nowhere", None),
    ],
)
def test_full_templates(path: str, expected: Optional[str]) -> None:
    assert route_template(APP, scope(path)) == expected


def test_a_wrong_method_gives_the_partial_match_template() -> None:
    assert route_template(APP, scope("/v2/items/1", method="DELETE")) == "/v2/items/{item_id}"


def test_root_path_from_the_server_is_not_part_of_the_template() -> None:
    assert route_template(APP, scope("/v2/items/7", root_path="/prefix")) == "/v2/items/{item_id}"


def test_host_routes() -> None:
    assert route_template(APP, scope("/hosted/4", host="api.example.com")) == "/hosted/{n}"


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/prefix/items", "/prefix", "/prefix/items"),  # current servers: path holds root_path
        ("/items", "/prefix", "/prefix/items"),  # older servers sent them apart
        ("/prefix", "/prefix", "/prefix"),
        ("/prefixed/items", "/prefix", "/prefix/prefixed/items"),  # a prefix of the name is not a segment
        ("/items", "", "/items"),
        ("", "", "/"),
    ],
)
def test_url_path(path: str, root_path: str, expected: str) -> None:
    assert url_path(path, root_path) == expected
