"""Map finished OpenTelemetry SDK spans to a Sentry transaction event.

This module is pure: it reads :class:`~opentelemetry.sdk.trace.ReadableSpan` objects and returns
plain, JSON-safe dicts. It never sends anything and never touches global state.

Both semantic-convention generations are read everywhere (old ``http.method`` / ``http.target`` /
``http.status_code`` / ``db.statement`` ... and stable ``http.request.method`` / ``url.path`` /
``http.response.status_code`` / ``db.query.text`` ...), because instrumentations emit the old ones
unless ``OTEL_SEMCONV_STABILITY_OPT_IN`` says otherwise.

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

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, SpanKind, StatusCode, format_span_id, format_trace_id

from ._event_common import EventDefaults  # re-exported: callers may import it from here

__all__ = [
    "MAX_SPANS",
    "ORIGIN",
    "EventDefaults",
    "http_status_to_span_status",
    "json_safe",
    "span_description",
    "span_op",
    "span_status",
    "transaction_event",
]

#: Most child spans one transaction carries (Sentry's limit; sentry-sdk's ``max_spans``).
MAX_SPANS = 1000

#: ``origin`` of everything this module produces.
ORIGIN = "auto.otel"


# --------------------------------------------------------------------------------------------
# attribute helpers


def _attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present with a non-empty value, else None."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _first_str(attrs: Mapping[str, Any], *keys: str) -> Optional[str]:
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


_MIN_I64 = -(2**63)
_MAX_U64 = 2**64 - 1


def json_safe(value: Any) -> Any:
    """Return ``value`` made JSON-safe for Sentry.

    Tuples/sets -> lists, bytes -> str (UTF-8, undecodable bytes backslash-escaped), NaN/inf and
    integers outside the 64-bit range -> str (Relay silently turns both into ``0``), mappings
    recursively with str keys, anything else -> ``str()``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if _MIN_I64 <= value <= _MAX_U64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (Sequence, set, frozenset)):
        return [json_safe(v) for v in value]
    return str(value)


def _json_attrs(attrs: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    return {str(k): json_safe(v) for k, v in (attrs or {}).items()}


def _ts(ns: Optional[int]) -> float:
    return (ns or 0) / 1e9


def _span_times(span: ReadableSpan) -> tuple[float, float]:
    """(start, end) in float seconds; end is clamped to >= start (Relay rejects end < start)."""
    start = _ts(span.start_time)
    end = _ts(span.end_time) if span.end_time is not None else start
    return start, max(start, end)


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


def _http_method(attrs: Mapping[str, Any]) -> Optional[str]:
    method = _first_str(attrs, "http.request.method", "http.method")
    return method.upper() if method else None


def _db_system(attrs: Mapping[str, Any]) -> Optional[str]:
    return _first_str(attrs, "db.system.name", "db.system")


def _is_asgi_event(attrs: Mapping[str, Any]) -> bool:
    return "asgi.event.type" in attrs


def _normalize_op_part(value: str) -> str:
    return "_".join(value.strip().lower().split())


def span_op(span: ReadableSpan) -> str:
    """The Sentry span op for ``span`` (table in the module docstring)."""
    attrs = _attrs(span)

    explicit = _first_str(attrs, "sentry.op")
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

    gen_ai_operation = _first_str(attrs, "gen_ai.operation.name")
    if gen_ai_operation:
        return "gen_ai." + _normalize_op_part(gen_ai_operation)
    if _first(attrs, "gen_ai.system", "gen_ai.provider.name") is not None:
        return "gen_ai"

    db_system = _db_system(attrs)
    if db_system:
        return "db.redis" if db_system.lower() in _REDIS_SYSTEMS else "db"

    if _first(attrs, "messaging.system") is not None:
        operation = _first_str(attrs, "messaging.operation.type", "messaging.operation")
        if operation:
            key = operation.strip().lower()
            return _MESSAGING_OPS.get(key, "queue." + _normalize_op_part(key))
        if span.kind == SpanKind.PRODUCER:
            return "queue.publish"
        if span.kind == SpanKind.CONSUMER:
            return "queue.process"
        return "queue"

    rpc_system = _first_str(attrs, "rpc.system")
    if rpc_system:
        if rpc_system.lower() == "grpc":
            if span.kind == SpanKind.SERVER:
                return "grpc.server"
            if span.kind == SpanKind.CLIENT:
                return "grpc.client"
        return "rpc"

    if _http_method(attrs):
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


def _path(attrs: Mapping[str, Any]) -> Optional[str]:
    """Request path without query string: ``url.path`` or ``http.target``."""
    path = _first_str(attrs, "url.path", "http.target")
    if path is None:
        return None
    return path.split("?", 1)[0].split("#", 1)[0] or "/"


def _query(attrs: Mapping[str, Any]) -> Optional[str]:
    query = _first_str(attrs, "url.query")
    if query is not None:
        return query
    for key in ("url.full", "http.url", "http.target"):
        value = attrs.get(key)
        if isinstance(value, str) and "?" in value:
            return value.split("?", 1)[1].split("#", 1)[0] or None
    return None


def _default_port(scheme: Optional[str]) -> Optional[int]:
    return {"http": 80, "https": 443, "ws": 80, "wss": 443}.get((scheme or "").lower())


def _url(attrs: Mapping[str, Any], *, server: bool) -> Optional[str]:
    """Best full URL (no query/credentials) for an HTTP span, or None."""
    full = _first_str(attrs, "url.full", "http.url")
    if full:
        return _strip_url(full)
    scheme = _first_str(attrs, "url.scheme", "http.scheme") or "http"
    host = _first_str(attrs, "http.host") if server else None
    if not host:
        if server:
            address = _first_str(attrs, "server.address", "http.server_name", "net.host.name")
            port = _as_int(_first(attrs, "server.port", "net.host.port"))
        else:
            address = _first_str(attrs, "server.address", "net.peer.name", "http.host")
            port = _as_int(_first(attrs, "server.port", "net.peer.port"))
        if not address:
            return None
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"  # IPv6 literal
        host = address if port in (None, _default_port(scheme)) else f"{address}:{port}"
    return f"{scheme}://{host}{_path(attrs) or ''}"


def _db_description(span: ReadableSpan, attrs: Mapping[str, Any]) -> str:
    query = _first_str(attrs, "db.query.text", "db.statement")
    if query:
        return query
    summary = _first_str(attrs, "db.query.summary")
    if summary:
        return summary
    operation = _first_str(attrs, "db.operation.name", "db.operation")
    target = _first_str(
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
    attrs = _attrs(span)
    explicit = _first_str(attrs, "sentry.description")
    if explicit:
        return explicit
    if _is_asgi_event(attrs):
        return span.name

    gen_ai_operation = _first_str(attrs, "gen_ai.operation.name")
    if gen_ai_operation or _first(attrs, "gen_ai.system", "gen_ai.provider.name") is not None:
        keys = _GEN_AI_TARGET_KEYS.get(
            (gen_ai_operation or "").lower(), ("gen_ai.request.model", "gen_ai.response.model")
        )
        target = _first_str(attrs, *keys)
        if gen_ai_operation and target:
            return f"{gen_ai_operation} {target}"
        return span.name or gen_ai_operation or "gen_ai"

    if _db_system(attrs):
        return _db_description(span, attrs)

    if _first(attrs, "messaging.system") is not None:
        destination = _first_str(
            attrs, "messaging.destination.name", "messaging.destination", "messaging.source.name"
        )
        return destination or span.name

    method = _http_method(attrs)
    if method:
        if span.kind == SpanKind.SERVER:
            route = _first_str(attrs, "http.route")
            target = route or _path(attrs)
            return f"{method} {target}" if target else span.name
        url = _url(attrs, server=False)
        if url:
            return f"{method} {url}"
        path = _path(attrs)
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


def _http_status_code(attrs: Mapping[str, Any]) -> Optional[int]:
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


def span_status(span: ReadableSpan) -> str:
    """The Sentry span status of ``span`` (rules in the module docstring)."""
    attrs = _attrs(span)
    is_error = span.status.status_code == StatusCode.ERROR
    if not _is_asgi_event(attrs):
        http_code = _http_status_code(attrs)
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
        return _status_from_error_type(_first_str(attrs, "error.type"))
    return "ok"


# --------------------------------------------------------------------------------------------
# event


def _links(links: Sequence[Link]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for link in links:
        ctx = link.context
        if not ctx.is_valid:
            continue
        item: dict[str, Any] = {
            "trace_id": format_trace_id(ctx.trace_id),
            "span_id": format_span_id(ctx.span_id),
            "sampled": ctx.trace_flags.sampled,
        }
        if link.attributes:
            item["attributes"] = _json_attrs(link.attributes)
        out.append(item)
    return out


def _span_data(span: ReadableSpan) -> dict[str, Any]:
    data = _json_attrs(span.attributes)
    if span.status.status_code == StatusCode.ERROR and span.status.description:
        data.setdefault("sentry.status.message", span.status.description)
    scope = span.instrumentation_scope
    if scope is not None and scope.name:
        data.setdefault("otel.scope.name", scope.name)
    return data


def _ids(span: ReadableSpan) -> tuple[int, int]:
    """(trace_id, span_id) of ``span``; (0, 0) when it has no valid context."""
    ctx = span.get_span_context()
    if ctx is None or not ctx.is_valid:
        return 0, 0
    return ctx.trace_id, ctx.span_id


def _child_json(span: ReadableSpan) -> dict[str, Any]:
    trace_id, span_id = _ids(span)
    start, end = _span_times(span)
    out: dict[str, Any] = {
        "trace_id": format_trace_id(trace_id),
        "span_id": format_span_id(span_id),
    }
    if span.parent is not None and span.parent.span_id:
        out["parent_span_id"] = format_span_id(span.parent.span_id)
    out.update(
        {
            "op": span_op(span),
            "description": span_description(span),
            "status": span_status(span),
            "start_timestamp": start,
            "timestamp": end,
            "origin": ORIGIN,
            "kind": span.kind.name.lower(),
            "data": _span_data(span),
        }
    )
    links = _links(span.links)
    if links:
        out["links"] = links
    return out


def _transaction_name(root: ReadableSpan, explicit: Optional[str]) -> tuple[str, str]:
    """(name, source) following sentry-sdk's conventions for Python web frameworks."""
    if explicit:
        return explicit, "custom"
    attrs = _attrs(root)
    route = _first_str(attrs, "http.route")
    if route:
        return route, "route"
    if root.kind == SpanKind.SERVER and _http_method(attrs):
        path = _path(attrs)
        if path:
            return path, "url"
    if root.kind == SpanKind.CONSUMER or span_op(root) == "queue.process":
        return root.name or "<unlabeled transaction>", "task"
    return root.name or "<unlabeled transaction>", "custom"


def _valid_sample_rate(sample_rate: Optional[float]) -> Optional[float]:
    if sample_rate is None or isinstance(sample_rate, bool):
        return None
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and 0.0 < rate <= 1.0 else None


def transaction_event(
    root: ReadableSpan,
    children: Sequence[ReadableSpan],
    defaults: EventDefaults,
    *,
    sample_rate: Optional[float] = None,
    transaction_name: Optional[str] = None,
) -> dict[str, Any]:
    """Build a Sentry transaction event from a local root span and its descendants.

    * ``children``: the finished spans of the same trace to nest under ``root`` (any order). The
      root itself (same span id) and spans of another trace are skipped. At most
      :data:`MAX_SPANS` (1000, Sentry's limit) are kept, the earliest-starting ones; the caller
      can count the rest as dropped (``len(children) - MAX_SPANS``) for client reports - the
      count is not put in the event because Relay flags unknown top-level keys such as
      sentry-sdk's internal ``_dropped_spans`` as errors. Children whose parent is not in the
      set keep their ``parent_span_id`` (Sentry tolerates orphans).
    * ``transaction``: ``transaction_name`` (source ``custom``), else ``http.route`` (source
      ``route``, e.g. ``/v1/items/{item_id}`` as sentry-sdk's FastAPI integration names it), else
      the server path (source ``url``; Relay then replaces ids and marks it ``sanitized``), else
      the span name (``task`` for consumers, ``custom`` otherwise).
    * ``sample_rate`` (the head sampling probability that let this trace through) is recorded
      twice: as ``contexts.trace.data["sentry.sample_rate"]`` (the attribute Relay reads from OTLP
      spans) and in ``contexts.trace.dynamic_sampling_context["sample_rate"]`` (a string), which is
      where sentry-sdk 2.x puts it: its client pops ``contexts.trace.dynamic_sampling_context``
      and sends it as the envelope header ``trace``, the header Sentry extrapolates from. Whoever
      builds the envelope should do the same (adding ``public_key``); left in place, Relay keeps
      it as an unknown trace-context field. The DSC is only added when a valid rate is given;
      invalid rates (not in ``(0, 1]``) are ignored.
    * Raises ``ValueError`` if ``root`` has no valid span context; children without one are
      skipped.
    * ``contexts.trace.data`` and ``contexts.otel.attributes`` both carry the root's attributes
      (JSON-safe); ``contexts.otel.resource`` the resource attributes. Attribute values are not
      scrubbed here (e.g. ``http.url`` may contain a query string).
    """
    root_trace_id, root_span_id = _ids(root)
    if not root_trace_id:
        raise ValueError("root span has no valid span context")
    trace_id = format_trace_id(root_trace_id)
    root_id = format_span_id(root_span_id)
    root_attrs = _attrs(root)
    start, end = _span_times(root)
    name, source = _transaction_name(root, transaction_name)
    op = span_op(root)
    rate = _valid_sample_rate(sample_rate)

    trace_data = _span_data(root)
    if rate is not None:
        trace_data["sentry.sample_rate"] = rate

    dsc: Optional[dict[str, Any]] = None
    if rate is not None:
        dsc = {"trace_id": trace_id, "sample_rate": str(rate), "sampled": "true"}
        if defaults.environment:
            dsc["environment"] = defaults.environment
        if defaults.release:
            dsc["release"] = defaults.release
        if source != "url":  # sentry-sdk's LOW_QUALITY_TRANSACTION_SOURCES
            dsc["transaction"] = name

    trace_context: dict[str, Any] = {"trace_id": trace_id, "span_id": root_id}
    if root.parent is not None and root.parent.span_id:
        trace_context["parent_span_id"] = format_span_id(root.parent.span_id)
    trace_context.update(
        {
            "op": op,
            "status": span_status(root),
            "origin": ORIGIN,
            "data": trace_data,
        }
    )
    if dsc is not None:
        trace_context["dynamic_sampling_context"] = dsc
    links = _links(root.links)
    if links:
        trace_context["links"] = links

    contexts: dict[str, Any] = {
        "trace": trace_context,
        "otel": {
            "attributes": _json_attrs(root.attributes),
            "resource": _json_attrs(root.resource.attributes if root.resource else None),
        },
    }

    selected = []
    for child in children:
        child_trace_id, child_span_id = _ids(child)
        if child_trace_id == root_trace_id and child_span_id != root_span_id:
            selected.append(child)
    selected.sort(key=lambda s: s.start_time or 0)
    spans = [_child_json(s) for s in selected[:MAX_SPANS]]

    event: dict[str, Any] = {
        "type": "transaction",
        "event_id": uuid.uuid4().hex,
        "platform": "python",
        "transaction": name,
        "transaction_info": {"source": source},
        "start_timestamp": start,
        "timestamp": end,
        "contexts": contexts,
        "spans": spans,
    }

    tags: dict[str, str] = {}
    method = _http_method(root_attrs)
    if root.kind == SpanKind.SERVER and method:
        request: dict[str, Any] = {"method": method}
        url = _url(root_attrs, server=True)
        if url:
            request["url"] = url
        query = _query(root_attrs)
        if query:
            request["query_string"] = query
        event["request"] = request
        code = _http_status_code(root_attrs)
        if code is not None:
            tags["http.status_code"] = str(code)
            contexts["response"] = {"status_code": code}
    if tags:
        event["tags"] = tags

    if defaults.release:
        event["release"] = defaults.release
    if defaults.environment:
        event["environment"] = defaults.environment
    if defaults.server_name:
        event["server_name"] = defaults.server_name
    if defaults.sdk:
        event["sdk"] = json_safe(defaults.sdk)
    return event
