"""Sentry error events from live exceptions and request facts.

Frames come from sentry-sdk's own ``event_from_exception`` while the traceback is alive (Starlette
clears ``__traceback__`` once a handler returns), so they match what sentry-sdk itself would send.
Everything else in the event (tags, contexts, request, trace) is derived from the request facts, the
same facts the server span carries as attributes.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

from opentelemetry.trace import SpanContext

from . import _request_body
from ._classify import CATEGORY_HINT, ErrorFacts
from ._enrich import request_context, slow_request_breadcrumb
from ._event_common import EventDefaults, runtime_contexts
from ._redact import sanitize_headers, sanitize_query
from ._routes import route_template, url_path
from ._span_semantics import http_status_to_span_status

MAX_TAG_VALUE = 200


@dataclass
class RequestFacts:
    """What the server knows about one HTTP request; mirrors the server span's attributes."""

    method: str
    path: str
    url: str
    query_string: str = ""
    route: Optional[str] = None
    headers: dict[str, str] = field(default_factory=dict)
    client_address: Optional[str] = None
    status_code: Optional[int] = None
    started: float = field(default_factory=time.time)
    # Filled in by _enrich.enrich() at the end of the request.
    endpoint_type: str = "general"
    is_revenue_critical: bool = False
    user_id: Optional[str] = None
    user_email: Optional[str] = None
    api_key_id: Optional[str] = None
    api_key_hash: Optional[str] = None
    duration: Optional[float] = None
    slow: bool = False
    body: Any = None  # the request body as the app read it (_request_body.RequestBody)

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> RequestFacts:
        raw_headers = scope.get("headers") or ()
        headers = sanitize_headers(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers
        )
        scheme = scope.get("scheme", "http")
        host = headers.get("host")
        if not host and scope.get("server"):
            server_host, port = scope["server"][0], scope["server"][1]
            host = f"{server_host}:{port}" if port not in (None, 80, 443) else str(server_host)
        path = url_path(str(scope.get("path", "")), str(scope.get("root_path", "")))
        query = scope.get("query_string", b"")
        query_string = sanitize_query(query.decode("latin-1") if isinstance(query, bytes) else str(query))
        client = scope.get("client")
        return cls(
            method=str(scope.get("method", "GET")),
            path=path,
            url=urllib.parse.urlunsplit((scheme, host or "", path, "", "")),
            query_string=query_string,
            headers=headers,
            client_address=str(client[0]) if client else None,
            body=scope.get(_request_body.SCOPE_KEY),
        )

    def update_route(self, scope: dict[str, Any], entry: Optional[dict[str, Any]] = None) -> None:
        """The full route template: walked from the outer app with the request as it arrived
        (``entry``), else the one the router left in the scope (local to its router or mount)."""
        template = route_template(entry.get("app"), entry) if entry and entry.get("app") else None
        if template is None:
            template = getattr(scope.get("route"), "path", None)
        if isinstance(template, str) and template:
            self.route = template


@dataclass
class CapturedError:
    """One exception seen live, with its frames already extracted."""

    exception: BaseException
    values: list[dict[str, Any]]
    handled: bool
    level: str = "error"
    status_code: Optional[int] = None
    span_context: Optional[SpanContext] = None
    parent_span_id: Optional[str] = None
    timestamp: float = field(default_factory=time.time)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    tags: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set by the capture helpers, the logging handler and the background hooks (all sanitized).
    extra: dict[str, Any] = field(default_factory=dict)
    logentry: Optional[dict[str, Any]] = None
    logger: Optional[str] = None
    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)
    soft: bool = False  # provisional: a later capture of the same exception in the request replaces it


def _tag(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TAG_VALUE else text[: MAX_TAG_VALUE - 3] + "..."


def _trace_context(span_context: Optional[SpanContext]) -> dict[str, Any]:
    if span_context is not None and span_context.is_valid:
        return {"trace_id": f"{span_context.trace_id:032x}", "span_id": f"{span_context.span_id:016x}"}
    # No OTel span (e.g. configure() without an instrumented server): still give Sentry a trace.
    return {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16]}


def error_event(
    error: CapturedError,
    request: Optional[RequestFacts],
    defaults: EventDefaults,
    *,
    send_default_pii: bool = False,
    classification: Optional[ErrorFacts] = None,
) -> dict[str, Any]:
    """Assemble the Sentry error event for one captured exception.

    Tags, contexts and user follow the seeds' middleware, so their Sentry queries keep working:
    ``error_category:payment_error``, ``is_revenue_critical:true``, ``provider:openrouter``...
    """
    outer = error.values[-1] if error.values else {}
    status_code = (
        error.status_code if error.status_code is not None else (request.status_code if request else None)
    )
    tags: dict[str, str] = {"exception_type": _tag(outer.get("type", type(error.exception).__name__))}
    contexts: dict[str, dict[str, Any]] = runtime_contexts()
    contexts["trace"] = trace = _trace_context(error.span_context)
    if error.parent_span_id and error.span_context is not None and error.span_context.is_valid:
        trace["parent_span_id"] = error.parent_span_id
    event: dict[str, Any] = {
        "event_id": error.event_id,
        "timestamp": error.timestamp,
        "level": error.level,
        "exception": {"values": error.values},
        "contexts": contexts,
    }
    exception_context: dict[str, Any] = {
        "exception_type": tags["exception_type"],
        "exception_message": str(outer.get("value", ""))[: MAX_TAG_VALUE * 5],
    }
    if classification is not None:
        if classification.error_category:
            tags["error_category"] = classification.error_category
        for key in ("provider", "model"):
            value = getattr(classification, key)
            if value:
                tags[key] = _tag(value)
        if classification.is_timeout:
            tags["is_timeout"] = "true"
        exception_context.update(
            error_category=classification.error_category, is_timeout=classification.is_timeout
        )
    contexts["exception_context"] = exception_context
    if request is not None:
        name = request.route or request.path
        event["transaction"] = name
        event["transaction_info"] = {"source": "route" if request.route else "url"}
        if "model" not in tags and request.endpoint_type.startswith("inference") and request.body is not None:
            # the model the request asked for: evidence too, after the exception's and the spans'
            model = request.body.text_field("model")
            if model:
                tags["model"] = _tag(model)
        tags.update(
            endpoint=_tag(name),
            method=request.method,
            endpoint_type=request.endpoint_type,
            is_revenue_critical=str(request.is_revenue_critical).lower(),
            has_user=str(request.user_id is not None).lower(),
        )
        contexts["request"] = request_context(request, send_default_pii=send_default_pii)
        user: dict[str, Any] = {}
        if request.user_id is not None:
            user["id"] = request.user_id
        if send_default_pii and request.user_email:
            user["email"] = request.user_email
        if send_default_pii and request.client_address:
            user["ip_address"] = request.client_address
        user_data = {"api_key_id": request.api_key_id, "api_key_hash": request.api_key_hash}
        if any(v is not None for v in user_data.values()):
            user["data"] = {k: v for k, v in user_data.items() if v is not None}
        if user:
            event["user"] = user
        if request.slow:
            event["breadcrumbs"] = {"values": [slow_request_breadcrumb(request)]}
        exception_context["duration_ms"] = round((error.timestamp - request.started) * 1000, 3)
        trace["op"] = "http.server"
        if status_code is not None:
            trace["status"] = http_status_to_span_status(status_code)
        http: dict[str, Any] = {"method": request.method, "url": request.url, "headers": request.headers}
        if request.query_string:
            http["query_string"] = request.query_string
        if send_default_pii and request.client_address:
            http["env"] = {"REMOTE_ADDR": request.client_address}
        _request_body.add_to_event(http, event, request.body)
        event["request"] = http
        response: dict[str, Any] = {"duration_ms": round((error.timestamp - request.started) * 1000, 3)}
        if status_code is not None:
            response["status_code"] = status_code
        contexts["response"] = response
    if status_code is not None:
        tags["http_status"] = str(status_code)
    if defaults.service_name:
        tags["service.name"] = _tag(defaults.service_name)
    tags.update({k: _tag(v) for k, v in error.tags.items() if k != CATEGORY_HINT})
    event["tags"] = tags
    contexts.update(error.contexts)
    if error.extra:
        event["extra"] = error.extra
    if error.logentry:
        event["logentry"] = error.logentry
    if error.logger:
        event["logger"] = error.logger
    if error.breadcrumbs:  # recorded before this event, so they come before the request's own
        earlier = (event.get("breadcrumbs") or {}).get("values") or []
        event["breadcrumbs"] = {"values": [*error.breadcrumbs, *earlier]}
    return defaults.apply(event)
