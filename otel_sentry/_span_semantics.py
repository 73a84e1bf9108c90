"""Read Sentry's op, description and status off an OpenTelemetry span's semantic conventions.

Kept apart from event assembly because it is a table of conventions that changes with OTel's
semconv, not with Sentry's event shape. Both generations are read everywhere (old ``http.method`` /
``http.target`` / ``http.status_code`` / ``db.statement`` ... and stable ``http.request.method`` /
``url.path`` / ``http.response.status_code`` / ``db.query.text`` ...), because instrumentations emit
the old ones unless ``OTEL_SEMCONV_STABILITY_OPT_IN`` says otherwise.

Op mapping (first rule that matches wins; see :func:`span_op`):

=============================================  ==============================================
span                                           Sentry ``op``
=============================================  ==============================================
attribute ``sentry.op``                        its value
ASGI ``http send`` / ``http receive``          ``middleware.asgi.send`` / ``middleware.asgi.receive``
(``asgi.event.type`` attribute)                (mirrors sentry-sdk's ``middleware.starlette.*``;
                                               deliberately *not* ``http.*`` so they never count as
                                               outgoing requests in Sentry's HTTP views)
``gen_ai.operation.name``                      ``gen_ai.<operation>`` (``gen_ai.chat`` ...)
``gen_ai.system`` / ``gen_ai.provider.name``   ``gen_ai``
``db.system[.name]`` redis / valkey            ``db.redis``
other ``db.system[.name]``                     ``db``
``messaging.system``                           ``queue.publish`` / ``queue.receive`` /
                                               ``queue.process`` (from the operation, else the kind)
``rpc.system`` grpc                            ``grpc.server`` / ``grpc.client``
other ``rpc.system``                           ``rpc``
HTTP method + kind SERVER / CLIENT / other     ``http.server`` / ``http.client`` / ``http``
no recognisable attributes                     INTERNAL ``function``, PRODUCER ``queue.publish``,
                                               CONSUMER ``queue.process``, SERVER ``server``,
                                               CLIENT ``client``
=============================================  ==============================================

``cache.get`` / ``cache.put`` are not produced: whether a redis command is a cache access is not
visible in OTel attributes (sentry-sdk only knows it from its ``cache_prefixes`` option).

Status mapping (see :func:`span_status`): the HTTP status code (both generations; same table as
sentry-sdk's ``get_span_status_from_http_code`` plus 499 -> ``cancelled``), then the gRPC status
code, then the OTel status: ``ERROR`` -> a status guessed from ``error.type`` (timeouts ->
``deadline_exceeded``, cancellations -> ``cancelled``, connection errors -> ``unavailable``) or
``internal_error``; ``OK`` / ``UNSET`` -> ``ok``. ASGI send/receive spans only use the OTel status
(the ``http.status_code`` they carry is the response's, already reflected on the server span).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

__all__ = [
    "attributes",
    "first_str",
    "http_method",
    "http_status_code",
    "http_status_to_span_status",
    "query_string",
    "request_path",
    "request_url",
    "span_description",
    "span_op",
    "span_status",
]


# --------------------------------------------------------------------------------------------
# attribute helpers


def attributes(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present with a non-empty value, else None."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def first_str(attrs: Mapping[str, Any], *keys: str) -> Optional[str]:
    value = _first(attrs, *keys)
    return None if value is None else str(value)


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------------
# op


_REDIS_SYSTEMS = frozenset({"redis", "valkey"})

# ASGI events an application receives (the rest it sends); used when the span name does not say.
_ASGI_RECEIVE_EVENTS = frozenset(
    {"http.request", "http.disconnect", "websocket.connect", "websocket.receive", "websocket.disconnect"}
)

_MESSAGING_OPS = {
    # stable messaging.operation.type
    "create": "queue.publish",
    "send": "queue.publish",
    "publish": "queue.publish",  # old messaging.operation / messaging.operation.type
    "receive": "queue.receive",
    "process": "queue.process",
    "deliver": "queue.process",  # pre-1.26 name of "process"
    "settle": "queue.settle",
}


def http_method(attrs: Mapping[str, Any]) -> Optional[str]:
    method = first_str(attrs, "http.request.method", "http.method")
    return method.upper() if method else None


def _db_system(attrs: Mapping[str, Any]) -> Optional[str]:
    return first_str(attrs, "db.system.name", "db.system")


def _is_asgi_event(attrs: Mapping[str, Any]) -> bool:
    return "asgi.event.type" in attrs


def _normalize_op_part(value: str) -> str:
    return "_".join(value.strip().lower().split())


def span_op(span: ReadableSpan) -> str:
    """The Sentry span op for ``span`` (table in the module docstring)."""
    attrs = attributes(span)

    explicit = first_str(attrs, "sentry.op")
    if explicit:
        return explicit

    if _is_asgi_event(attrs):
        name = span.name or ""
        if name.endswith(" receive"):
            return "middleware.asgi.receive"
        if name.endswith(" send"):
            return "middleware.asgi.send"
        event_type = str(attrs.get("asgi.event.type", ""))
        return "middleware.asgi.receive" if event_type in _ASGI_RECEIVE_EVENTS else "middleware.asgi.send"

    gen_ai_operation = first_str(attrs, "gen_ai.operation.name")
    if gen_ai_operation:
        return "gen_ai." + _normalize_op_part(gen_ai_operation)
    if _first(attrs, "gen_ai.system", "gen_ai.provider.name") is not None:
        return "gen_ai"

    db_system = _db_system(attrs)
    if db_system:
        return "db.redis" if db_system.lower() in _REDIS_SYSTEMS else "db"

    if _first(attrs, "messaging.system") is not None:
        operation = first_str(attrs, "messaging.operation.type", "messaging.operation")
        if operation:
            key = operation.strip().lower()
            return _MESSAGING_OPS.get(key, "queue." + _normalize_op_part(key))
        if span.kind == SpanKind.PRODUCER:
            return "queue.publish"
        if span.kind == SpanKind.CONSUMER:
            return "queue.process"
        return "queue"

    rpc_system = first_str(attrs, "rpc.system")
    if rpc_system:
        if rpc_system.lower() == "grpc":
            if span.kind == SpanKind.SERVER:
                return "grpc.server"
            if span.kind == SpanKind.CLIENT:
                return "grpc.client"
        return "rpc"

    if http_method(attrs):
        if span.kind == SpanKind.SERVER:
            return "http.server"
        if span.kind == SpanKind.CLIENT:
            return "http.client"
        return "http"

    return {
        SpanKind.SERVER: "server",
        SpanKind.CLIENT: "client",
        SpanKind.PRODUCER: "queue.publish",
        SpanKind.CONSUMER: "queue.process",
    }.get(span.kind, "function")


# --------------------------------------------------------------------------------------------
# description


def _strip_url(url: str) -> str:
    """``url`` without userinfo, query and fragment (kept as-is if it does not parse)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def request_path(attrs: Mapping[str, Any]) -> Optional[str]:
    """Request path without query string: ``url.path`` or ``http.target``."""
    path = first_str(attrs, "url.path", "http.target")
    if path is None:
        return None
    return path.split("?", 1)[0].split("#", 1)[0] or "/"


def query_string(attrs: Mapping[str, Any]) -> Optional[str]:
    query = first_str(attrs, "url.query")
    if query is not None:
        return query
    for key in ("url.full", "http.url", "http.target"):
        value = attrs.get(key)
        if isinstance(value, str) and "?" in value:
            return value.split("?", 1)[1].split("#", 1)[0] or None
    return None


def _default_port(scheme: Optional[str]) -> Optional[int]:
    return {"http": 80, "https": 443, "ws": 80, "wss": 443}.get((scheme or "").lower())


def request_url(attrs: Mapping[str, Any], *, server: bool) -> Optional[str]:
    """Best full URL (no query/credentials) for an HTTP span, or None."""
    full = first_str(attrs, "url.full", "http.url")
    if full:
        return _strip_url(full)
    scheme = first_str(attrs, "url.scheme", "http.scheme") or "http"
    host = first_str(attrs, "http.host") if server else None
    if not host:
        if server:
            address = first_str(attrs, "server.address", "http.server_name", "net.host.name")
            port = _as_int(_first(attrs, "server.port", "net.host.port"))
        else:
            address = first_str(attrs, "server.address", "net.peer.name", "http.host")
            port = _as_int(_first(attrs, "server.port", "net.peer.port"))
        if not address:
            return None
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"  # IPv6 literal
        host = address if port in (None, _default_port(scheme)) else f"{address}:{port}"
    return f"{scheme}://{host}{request_path(attrs) or ''}"


def _db_description(span: ReadableSpan, attrs: Mapping[str, Any]) -> str:
    query = first_str(attrs, "db.query.text", "db.statement")
    if query:
        return query
    summary = first_str(attrs, "db.query.summary")
    if summary:
        return summary
    operation = first_str(attrs, "db.operation.name", "db.operation")
    target = first_str(
        attrs, "db.collection.name", "db.sql.table", "db.mongodb.collection", "db.cassandra.table"
    )
    parts = [p for p in (operation, target) if p]
    return " ".join(parts) if parts else span.name


_GEN_AI_TARGET_KEYS = {
    "execute_tool": ("gen_ai.tool.name",),
    "invoke_agent": ("gen_ai.agent.name",),
    "create_agent": ("gen_ai.agent.name",),
}


def span_description(span: ReadableSpan) -> str:
    """A human description of ``span`` for Sentry.

    * ``sentry.description`` attribute if set;
    * HTTP server: ``"METHOD /route/{template}"`` (else the path without query);
    * HTTP client: ``"METHOD scheme://host/path"`` without query, fragment or credentials;
    * database: the query text (``db.query.text`` / ``db.statement``; instrumentations already
      parameterize it), else ``db.query.summary``, else ``"<operation> <table/collection>"``;
    * messaging: the destination (queue/topic) name;
    * gen_ai: ``"<operation> <model>"`` (``"chat gpt-4o"``), the tool / agent name for tools
      and agents;
    * otherwise (and for ASGI send/receive spans) the span name.
    """
    attrs = attributes(span)
    explicit = first_str(attrs, "sentry.description")
    if explicit:
        return explicit
    if _is_asgi_event(attrs):
        return span.name

    gen_ai_operation = first_str(attrs, "gen_ai.operation.name")
    if gen_ai_operation or _first(attrs, "gen_ai.system", "gen_ai.provider.name") is not None:
        keys = _GEN_AI_TARGET_KEYS.get(
            (gen_ai_operation or "").lower(), ("gen_ai.request.model", "gen_ai.response.model")
        )
        target = first_str(attrs, *keys)
        if gen_ai_operation and target:
            return f"{gen_ai_operation} {target}"
        return span.name or gen_ai_operation or "gen_ai"

    if _db_system(attrs):
        return _db_description(span, attrs)

    if _first(attrs, "messaging.system") is not None:
        destination = first_str(
            attrs, "messaging.destination.name", "messaging.destination", "messaging.source.name"
        )
        return destination or span.name

    method = http_method(attrs)
    if method:
        if span.kind == SpanKind.SERVER:
            route = first_str(attrs, "http.route")
            target = route or request_path(attrs)
            return f"{method} {target}" if target else span.name
        url = request_url(attrs, server=False)
        if url:
            return f"{method} {url}"
        path = request_path(attrs)
        return f"{method} {path}" if path else span.name

    return span.name


# --------------------------------------------------------------------------------------------
# status


def http_status_to_span_status(code: int) -> str:
    """Sentry span status for an HTTP status code (sentry-sdk's table, plus 499 -> cancelled)."""
    if 100 <= code < 400:
        return "ok"
    if 400 <= code < 500:
        return {
            401: "unauthenticated",
            403: "permission_denied",
            404: "not_found",
            409: "already_exists",
            413: "failed_precondition",
            429: "resource_exhausted",
            499: "cancelled",
        }.get(code, "invalid_argument")
    if 500 <= code < 600:
        return {
            501: "unimplemented",
            503: "unavailable",
            504: "deadline_exceeded",
        }.get(code, "internal_error")
    return "unknown_error"


_GRPC_STATUS = {
    0: "ok",
    1: "cancelled",
    2: "unknown_error",
    3: "invalid_argument",
    4: "deadline_exceeded",
    5: "not_found",
    6: "already_exists",
    7: "permission_denied",
    8: "resource_exhausted",
    9: "failed_precondition",
    10: "aborted",
    11: "out_of_range",
    12: "unimplemented",
    13: "internal_error",
    14: "unavailable",
    15: "data_loss",
    16: "unauthenticated",
}


def http_status_code(attrs: Mapping[str, Any]) -> Optional[int]:
    return _as_int(_first(attrs, "http.response.status_code", "http.status_code"))


def _status_from_error_type(error_type: Optional[str]) -> str:
    if not error_type:
        return "internal_error"
    code = _as_int(error_type)
    if code is not None:  # HTTP semconv: error.type is the status code when there is no exception
        status = http_status_to_span_status(code)
        return "internal_error" if status == "ok" else status
    lowered = error_type.lower()
    if "timeout" in lowered or "timedout" in lowered:
        return "deadline_exceeded"
    if "cancel" in lowered:
        return "cancelled"
    if "connect" in lowered:
        return "unavailable"
    if "notimplemented" in lowered:
        return "unimplemented"
    return "internal_error"


_failed_after_end: OrderedDict[int, None] = OrderedDict()
_FAILED_KEPT = 1024


def note_failed_after_end(span_id: int) -> None:
    """A server span's request failed after the instrumentation had ended the span (a streaming
    response that broke mid-way): its Sentry transaction is ``internal_error``, not ``ok``."""
    _failed_after_end[span_id] = None
    while len(_failed_after_end) > _FAILED_KEPT:
        _failed_after_end.popitem(last=False)


def span_status(span: ReadableSpan) -> str:
    """The Sentry span status of ``span`` (rules in the module docstring)."""
    context = span.get_span_context()
    if context is not None and context.span_id in _failed_after_end:
        return "internal_error"
    attrs = attributes(span)
    is_error = span.status.status_code == StatusCode.ERROR
    if not _is_asgi_event(attrs):
        http_code = http_status_code(attrs)
        if http_code is not None:
            status = http_status_to_span_status(http_code)
            if status != "ok" or not is_error:
                return status
        grpc_code = _as_int(_first(attrs, "rpc.grpc.status_code"))
        if grpc_code is not None:
            status = _GRPC_STATUS.get(grpc_code, "unknown_error")
            if status != "ok" or not is_error:
                return status
    if is_error:
        return _status_from_error_type(first_str(attrs, "error.type"))
    return "ok"
