"""The seeds' ``/sentry-debug`` endpoint, added to Starlette/FastAPI apps only when configured.

``OTEL_SENTRY_DEBUG_ROUTE=true`` (or a path) adds a GET route that captures a test event and
returns its id, like the seeds': ``{"status": "Sentry exception captured", "event_id": ...,
"raised_exception": false}``; ``?raise_exception=true`` raises instead, through the app's normal
error path. The event is tagged ``debug_event=true``. So that a test does not count as a failed
request anywhere, the route is left out of tracing: the distro adds it to the instrumentations'
excluded URLs, and the capture starts no span of its own.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import MutableMapping
from typing import Any, Optional

from . import _helpers
from ._runtime import get_runtime
from ._settings import _parse_debug_route

logger = logging.getLogger("otel_sentry")

ENV = "OTEL_SENTRY_DEBUG_ROUTE"
_ADDED = "_otel_sentry_debug_route"
_EXCLUDE_VARS = ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_STARLETTE_EXCLUDED_URLS")


class SentryDebugError(Exception):
    """The test exception /sentry-debug captures (or raises)."""


def exclude_from_tracing(environ: Optional[MutableMapping[str, str]] = None) -> None:
    """Add the debug route to the HTTP instrumentations' excluded URLs (read when they load)."""
    env = os.environ if environ is None else environ
    try:
        path = _parse_debug_route(env.get(ENV, ""))
    except ValueError:
        return  # the settings loader reports it
    if path is None:
        return
    pattern = re.escape(path) + "$"
    generic = env.get("OTEL_PYTHON_EXCLUDED_URLS", "")
    for var in _EXCLUDE_VARS:
        current = env.get(var, generic)
        if pattern not in current.split(","):
            env[var] = f"{current},{pattern}" if current.strip() else pattern


def add_to(app: Any) -> None:
    """Put the route first in the app's router, once, when the setting asks for it."""
    runtime = get_runtime()
    path = getattr(runtime.settings, "debug_route", None) if runtime is not None else None
    if not path or getattr(app, _ADDED, False):
        return
    router = getattr(app, "router", None)
    routes = getattr(router, "routes", None)
    if not isinstance(routes, list):
        return
    from starlette.routing import Route

    routes.insert(0, Route(path, sentry_debug, methods=["GET"], include_in_schema=False))
    setattr(app, _ADDED, True)
    logger.info("otel_sentry: debug route enabled at %s (%s)", path, ENV)


async def sentry_debug(request: Any) -> Any:
    """Capture a test event and return its id; ``?raise_exception=true`` raises it instead."""
    from starlette.responses import JSONResponse

    raise_exception = request.query_params.get("raise_exception", "").strip().lower() in ("1", "true", "yes")
    try:
        raise SentryDebugError("Sentry debug event from otel_sentry's /sentry-debug route")
    except SentryDebugError as exc:
        event_id = _helpers.record(
            exc,
            helper="sentry_debug",
            category=None,
            context_name="debug",
            context={"route": request.url.path, "raise_exception": raise_exception},
            tags={"debug_event": "true"},
            level="error",
            handled=not raise_exception,
            mechanism="otel_sentry.debug_route",
            span="none",
            status_code=500 if raise_exception else None,  # what the app's error path will answer
        )
        if raise_exception:
            raise
    return JSONResponse(
        {"status": "Sentry exception captured", "event_id": event_id, "raised_exception": False}
    )
