"""The full route template and URL path of a request, as the app's routing sees it from the outside.

Two things the ASGI scope gets wrong once routing has run, and that every app with router prefixes or
mounted sub-apps hits:

* ``scope["route"].path`` is the template *local* to the router or mounted app that matched:
  FastAPI >= 0.137 keeps a router's own route objects on ``include_router(prefix=...)``, and a route
  inside ``Mount("/sub", app=...)`` knows only its inner path. ``/v2/items/{id}`` would read
  ``/items/{id}`` and ``/sub/boom`` would collide with the top-level ``/boom``. Here the routing tree is
  walked from the outer app with the request as it arrived (the contrib FastAPI instrumentation does
  the same for included routers, through FastAPI's own ``iter_route_contexts``), joining the prefix
  of every ``Mount`` on the way.
* ``scope["path"]`` already holds ``scope["root_path"]`` under current servers (uvicorn, Starlette's
  mounts), so joining the two doubles the prefix; older servers sent them apart.
"""

from __future__ import annotations

from typing import Any, Optional

_MAX_DEPTH = 8  # mounts inside mounts; deeper is a cycle or a pathological app


def url_path(path: str, root_path: str) -> str:
    """The path the client asked for: ``path`` when it already holds ``root_path``, else both."""
    if not root_path or path == root_path or path.startswith(root_path.rstrip("/") + "/"):
        return path or "/"
    return root_path.rstrip("/") + (path if path.startswith("/") else "/" + path)


def _flatten(routes: Any) -> list[Any]:
    """Routes with FastAPI's included routers (>= 0.137) expanded to their effective routes."""
    try:
        from fastapi.routing import iter_route_contexts

        return list(iter_route_contexts(routes))
    except ImportError:  # older FastAPI flattens on include_router; or no FastAPI at all
        pass
    flat: list[Any] = []
    for route in routes:
        expand = getattr(route, "effective_route_contexts", None)
        flat.extend(expand() if callable(expand) else (route,))
    return flat


def _matches(route: Any, scope: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from starlette.routing import Route

    # FastAPI's route contexts are Route subclasses whose own matches() is the router's; the contrib
    # instrumentation calls Route.matches on them for the plain template match, as done here.
    if isinstance(route, Route):
        match, child = Route.matches(route, scope)
        return match, dict(child)
    result: tuple[Any, dict[str, Any]] = route.matches(scope)
    return result


def route_template(app: Any, scope: dict[str, Any]) -> Optional[str]:
    """The full template of the route that serves ``scope`` (as the server sent it), or None."""
    try:
        from starlette.routing import Host, Match, Mount
    except ImportError:
        return None
    prefix = ""
    current = dict(scope)
    routes = getattr(app, "routes", None)
    for _ in range(_MAX_DEPTH):
        if routes is None:
            return None
        partial: Optional[str] = None
        descend: Any = None
        for entry in _flatten(routes):
            # FastAPI's RouteContext wraps the route that really matches (a Mount stays a Mount)
            route = getattr(entry, "_effective_route", entry)
            try:
                match, child = _matches(route, current)
            except Exception:  # a custom route type that cannot match a bare scope
                continue
            if match == Match.FULL:
                if isinstance(route, (Mount, Host)):
                    descend = (route, child)
                    break
                path = getattr(entry, "path", None)
                return prefix + path if isinstance(path, str) else None
            if match == Match.PARTIAL and partial is None:
                path = getattr(entry, "path", None)
                partial = prefix + path if isinstance(path, str) else None
        if descend is None:
            return partial
        route, child = descend
        if isinstance(route, Mount):
            prefix += route.path
        current.update(child)
        routes = getattr(route, "routes", None)
        if not routes:  # a mounted ASGI app that is not a router: its prefix is all we know
            return prefix or None
    return None
