"""Tests for otel_sentry._transactions: OTel ReadableSpan -> Sentry transaction event.

Spans come from the real OpenTelemetry SDK (TracerProvider + SimpleSpanProcessor +
InMemorySpanExporter); every produced transaction goes through Relay's StoreNormalizer.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Optional

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    format_span_id,
    format_trace_id,
)

from otel_sentry._event_common import EventDefaults
from otel_sentry._transactions import (
    MAX_SPANS,
    http_status_to_span_status,
    json_safe,
    span_description,
    span_op,
    span_status,
    transaction_event,
)

sentry_relay_processing = pytest.importorskip("sentry_relay.processing")

DEFAULTS = EventDefaults(
    release="shop@1.2.3",
    environment="production",
    server_name="web-1",
    sdk_block={
        "name": "otel_sentry",
        "version": "0.1.0",
        "packages": [{"name": "pypi:otel-sentry", "version": "0.1.0"}],
    },
)

REMOTE_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_SPAN_ID = 0xB7AD6B7169203331

ALL_STATUSES = [
    "ok",
    "cancelled",
    "unknown_error",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal_error",
    "unavailable",
    "data_loss",
    "unauthenticated",
]


# ---------------------------------------------------------------------------------------------
# helpers


class Tracing:
    """A private TracerProvider writing to an InMemorySpanExporter (no global state)."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "shop", "service.version": "1.2.3"})
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests.transactions", "1.0")

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def span(
        self,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Optional[Mapping[str, Any]] = None,
        status: Optional[Status] = None,
    ) -> ReadableSpan:
        """Start and end one span, return it as the exporter saw it."""
        span = self.tracer.start_span(name, kind=kind, attributes=dict(attributes or {}))
        if status is not None:
            span.set_status(status)
        span.end()
        return self.finished()[-1]


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    t = Tracing()
    yield t
    t.provider.shutdown()


_NORMALIZER = sentry_relay_processing.StoreNormalizer(project_id=1, enable_trimming=True)


def relay(event: dict[str, Any]) -> dict[str, Any]:
    """Normalize with Relay; fail on any reported error. (Relay raises for invalid transactions.)"""
    json.dumps(event, allow_nan=False)  # strict JSON: no NaN/inf, only JSON types
    out: dict[str, Any] = _NORMALIZER.normalize_event(copy.deepcopy(event))
    assert not out.get("errors"), out.get("errors")
    return out


def build_request_trace(t: Tracing, parent: Optional[trace.Span] = None) -> ReadableSpan:
    """A FastAPI-like request: server root + ASGI send + http client + sqlite + redis + LLM + error.

    Attributes mix both semantic-convention generations. Returns the root span.
    """
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    with t.tracer.start_as_current_span(
        "GET /v1/items/{item_id}",
        context=ctx,
        kind=SpanKind.SERVER,
        attributes={
            # old
            "http.method": "GET",
            "http.scheme": "http",
            "http.host": "testserver",
            "http.target": "/v1/items/3?secret=1",
            "http.url": "http://testserver/v1/items/3?secret=1",
            "http.route": "/v1/items/{item_id}",
            "net.peer.port": 50000,
            # stable
            "http.request.method": "GET",
            "url.scheme": "http",
            "url.path": "/v1/items/3",
            "url.query": "secret=1",
            "server.address": "testserver",
        },
    ) as root:
        with t.tracer.start_as_current_span(
            "SELECT shop.db",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "sqlite",
                "db.statement": "SELECT * FROM items WHERE id = ?",
                "db.system.name": "sqlite",
                "db.query.text": "SELECT * FROM items WHERE id = ?",
            },
        ):
            pass
        with t.tracer.start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "redis",
                "db.statement": "GET item:?",
                "net.peer.name": "cache",
                "db.redis.database_index": 0,
                "db.system.name": "redis",
                "db.operation.name": "GET",
                "server.address": "cache",
            },
        ):
            pass
        with t.tracer.start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={
                "http.method": "GET",
                "http.url": "https://user:pw@api.example.com:8443/v2/prices?token=abc#frag",
                "http.status_code": 200,
                "http.request.method": "GET",
                "url.full": "https://user:pw@api.example.com:8443/v2/prices?token=abc#frag",
                "http.response.status_code": 200,
            },
        ):
            pass
        with t.tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 34,
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.request.temperature": 0.2,
            },
        ):
            pass
        with t.tracer.start_as_current_span(
            "POST",
            kind=SpanKind.CLIENT,
            record_exception=False,
            set_status_on_exception=False,
            attributes={
                "http.method": "POST",
                "http.url": "http://inventory.internal/reserve",
                "http.request.method": "POST",
                "url.full": "http://inventory.internal/reserve",
                "server.address": "inventory.internal",
            },
        ) as failing:
            failing.set_attribute("http.status_code", 503)
            failing.set_attribute("http.response.status_code", 503)
            failing.set_attribute("error.type", "503")
            failing.record_exception(RuntimeError("inventory unavailable"))
            failing.set_status(Status(StatusCode.ERROR, "RuntimeError: inventory unavailable"))
        with t.tracer.start_as_current_span(
            "GET /v1/items/{item_id} http send",
            attributes={"asgi.event.type": "http.response.start", "http.status_code": 200},
        ):
            pass
        with t.tracer.start_as_current_span(
            "GET /v1/items/{item_id} http send", attributes={"asgi.event.type": "http.response.body"}
        ):
            pass
        root.set_attribute("http.status_code", 200)
        root.set_attribute("http.response.status_code", 200)
    return next(s for s in t.finished() if s.name == "GET /v1/items/{item_id}")


def children_of(t: Tracing, root: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in t.finished() if s is not root]


HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


# ---------------------------------------------------------------------------------------------
# span_op


OP_CASES: list[tuple[str, str, SpanKind, dict[str, Any], str]] = [
    ("server-old", "GET /x", SpanKind.SERVER, {"http.method": "GET", "http.route": "/x"}, "http.server"),
    ("server-stable", "GET /x", SpanKind.SERVER, {"http.request.method": "GET"}, "http.server"),
    ("client-old", "GET", SpanKind.CLIENT, {"http.method": "GET", "http.url": "http://a/b"}, "http.client"),
    ("client-stable", "GET", SpanKind.CLIENT, {"http.request.method": "GET"}, "http.client"),
    ("http-internal", "x", SpanKind.INTERNAL, {"http.method": "GET"}, "http"),
    (
        "asgi-send",
        "GET /x http send",
        SpanKind.INTERNAL,
        {"asgi.event.type": "http.response.start", "http.status_code": 200},
        "middleware.asgi.send",
    ),
    (
        "asgi-receive",
        "GET /x http receive",
        SpanKind.INTERNAL,
        {"asgi.event.type": "http.request"},
        "middleware.asgi.receive",
    ),
    (
        "asgi-unnamed-receive",
        "x",
        SpanKind.INTERNAL,
        {"asgi.event.type": "http.disconnect"},
        "middleware.asgi.receive",
    ),
    (
        "asgi-unnamed-send",
        "x",
        SpanKind.INTERNAL,
        {"asgi.event.type": "websocket.send"},
        "middleware.asgi.send",
    ),
    ("sqlite-old", "select", SpanKind.CLIENT, {"db.system": "sqlite", "db.statement": "select 1"}, "db"),
    ("postgres-stable", "SELECT", SpanKind.CLIENT, {"db.system.name": "postgresql"}, "db"),
    ("redis-old", "GET", SpanKind.CLIENT, {"db.system": "redis", "db.statement": "GET k"}, "db.redis"),
    (
        "redis-stable",
        "GET",
        SpanKind.CLIENT,
        {"db.system.name": "redis", "db.operation.name": "GET"},
        "db.redis",
    ),
    ("valkey", "GET", SpanKind.CLIENT, {"db.system.name": "valkey"}, "db.redis"),
    (
        "kafka-send-stable",
        "send orders",
        SpanKind.PRODUCER,
        {"messaging.system": "kafka", "messaging.operation.type": "send"},
        "queue.publish",
    ),
    (
        "rabbit-publish-old",
        "orders publish",
        SpanKind.PRODUCER,
        {"messaging.system": "rabbitmq", "messaging.operation": "publish"},
        "queue.publish",
    ),
    (
        "process",
        "process orders",
        SpanKind.CONSUMER,
        {"messaging.system": "kafka", "messaging.operation.type": "process"},
        "queue.process",
    ),
    (
        "receive",
        "receive orders",
        SpanKind.CONSUMER,
        {"messaging.system": "sqs", "messaging.operation.type": "receive"},
        "queue.receive",
    ),
    ("consumer-no-op", "orders", SpanKind.CONSUMER, {"messaging.system": "celery"}, "queue.process"),
    (
        "llm-chat-old",
        "chat gpt-4o",
        SpanKind.CLIENT,
        {"gen_ai.system": "openai", "gen_ai.operation.name": "chat"},
        "gen_ai.chat",
    ),
    (
        "llm-embeddings-stable",
        "embeddings m",
        SpanKind.CLIENT,
        {"gen_ai.provider.name": "openai", "gen_ai.operation.name": "embeddings"},
        "gen_ai.embeddings",
    ),
    (
        "llm-tool",
        "execute_tool t",
        SpanKind.INTERNAL,
        {"gen_ai.operation.name": "execute_tool"},
        "gen_ai.execute_tool",
    ),
    ("llm-no-op", "x", SpanKind.CLIENT, {"gen_ai.system": "anthropic"}, "gen_ai"),
    # a gen_ai span carrying http attributes is still gen_ai
    (
        "llm-over-http",
        "chat m",
        SpanKind.CLIENT,
        {"gen_ai.operation.name": "chat", "http.request.method": "POST"},
        "gen_ai.chat",
    ),
    ("grpc-server", "svc/M", SpanKind.SERVER, {"rpc.system": "grpc"}, "grpc.server"),
    ("grpc-client", "svc/M", SpanKind.CLIENT, {"rpc.system": "grpc"}, "grpc.client"),
    ("rpc-other", "svc/M", SpanKind.CLIENT, {"rpc.system": "apache_dubbo"}, "rpc"),
    ("explicit", "x", SpanKind.INTERNAL, {"sentry.op": "custom.thing", "http.method": "GET"}, "custom.thing"),
    ("internal-plain", "compute", SpanKind.INTERNAL, {}, "function"),
    ("producer-plain", "emit", SpanKind.PRODUCER, {}, "queue.publish"),
    ("consumer-plain", "handle", SpanKind.CONSUMER, {}, "queue.process"),
    ("server-plain", "serve", SpanKind.SERVER, {}, "server"),
    ("client-plain", "call", SpanKind.CLIENT, {}, "client"),
]


@pytest.mark.parametrize(
    ("name", "kind", "attrs", "expected"), [c[1:] for c in OP_CASES], ids=[c[0] for c in OP_CASES]
)
def test_span_op(tracing: Tracing, name: str, kind: SpanKind, attrs: dict[str, Any], expected: str) -> None:
    assert span_op(tracing.span(name, kind, attrs)) == expected


# ---------------------------------------------------------------------------------------------
# span_description


DESCRIPTION_CASES: list[tuple[str, str, SpanKind, dict[str, Any], str]] = [
    (
        "server-route",
        "GET /v1/items/{item_id}",
        SpanKind.SERVER,
        {"http.method": "GET", "http.route": "/v1/items/{item_id}", "http.target": "/v1/items/3"},
        "GET /v1/items/{item_id}",
    ),
    (
        "server-stable-no-route",
        "GET",
        SpanKind.SERVER,
        {"http.request.method": "get", "url.path": "/v1/items/3", "url.query": "a=1"},
        "GET /v1/items/3",
    ),
    (
        "server-old-target-query",
        "GET",
        SpanKind.SERVER,
        {"http.method": "GET", "http.target": "/v1/items/3?x=1"},
        "GET /v1/items/3",
    ),
    (
        "client-stable-full-url",
        "GET",
        SpanKind.CLIENT,
        {"http.request.method": "GET", "url.full": "https://u:p@api.example.com:8443/v2/x?token=abc#f"},
        "GET https://api.example.com:8443/v2/x",
    ),
    (
        "client-old-url",
        "POST",
        SpanKind.CLIENT,
        {"http.method": "POST", "http.url": "http://svc.internal/reserve?id=7"},
        "POST http://svc.internal/reserve",
    ),
    (
        "client-old-peer-target",
        "GET",
        SpanKind.CLIENT,
        {
            "http.method": "GET",
            "http.scheme": "https",
            "net.peer.name": "api.example.com",
            "http.target": "/a?b=1",
        },
        "GET https://api.example.com/a",
    ),
    (
        "client-stable-address-port",
        "GET",
        SpanKind.CLIENT,
        {"http.request.method": "GET", "server.address": "api", "server.port": 8080, "url.path": "/p"},
        "GET http://api:8080/p",
    ),
    ("client-method-only", "GET", SpanKind.CLIENT, {"http.request.method": "GET"}, "GET"),
    (
        "db-old-statement",
        "select",
        SpanKind.CLIENT,
        {"db.system": "sqlite", "db.statement": "SELECT * FROM t WHERE id = ?"},
        "SELECT * FROM t WHERE id = ?",
    ),
    (
        "db-stable-query-text",
        "SELECT t",
        SpanKind.CLIENT,
        {"db.system.name": "postgresql", "db.query.text": "SELECT 1"},
        "SELECT 1",
    ),
    (
        "db-old-op-table",
        "x",
        SpanKind.CLIENT,
        {"db.system": "mysql", "db.operation": "SELECT", "db.sql.table": "items"},
        "SELECT items",
    ),
    (
        "db-stable-op-collection",
        "x",
        SpanKind.CLIENT,
        {"db.system.name": "mongodb", "db.operation.name": "find", "db.collection.name": "users"},
        "find users",
    ),
    (
        "db-summary",
        "x",
        SpanKind.CLIENT,
        {"db.system.name": "postgresql", "db.query.summary": "SELECT items"},
        "SELECT items",
    ),
    ("db-nothing", "connect", SpanKind.CLIENT, {"db.system": "sqlite"}, "connect"),
    (
        "redis-statement",
        "GET",
        SpanKind.CLIENT,
        {"db.system": "redis", "db.statement": "GET item:?"},
        "GET item:?",
    ),
    (
        "messaging-destination",
        "send orders",
        SpanKind.PRODUCER,
        {"messaging.system": "kafka", "messaging.destination.name": "orders"},
        "orders",
    ),
    ("messaging-no-destination", "send", SpanKind.PRODUCER, {"messaging.system": "kafka"}, "send"),
    (
        "llm-chat",
        "chat",
        SpanKind.CLIENT,
        {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
        "chat gpt-4o",
    ),
    (
        "llm-tool",
        "x",
        SpanKind.INTERNAL,
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"},
        "execute_tool get_weather",
    ),
    ("llm-no-model", "my llm call", SpanKind.CLIENT, {"gen_ai.provider.name": "openai"}, "my llm call"),
    (
        "asgi",
        "GET /x http send",
        SpanKind.INTERNAL,
        {"asgi.event.type": "http.response.start", "http.method": "GET"},
        "GET /x http send",
    ),
    ("explicit", "x", SpanKind.INTERNAL, {"sentry.description": "my work", "db.system": "sqlite"}, "my work"),
    ("plain", "compute totals", SpanKind.INTERNAL, {}, "compute totals"),
]


@pytest.mark.parametrize(
    ("name", "kind", "attrs", "expected"),
    [c[1:] for c in DESCRIPTION_CASES],
    ids=[c[0] for c in DESCRIPTION_CASES],
)
def test_span_description(
    tracing: Tracing, name: str, kind: SpanKind, attrs: dict[str, Any], expected: str
) -> None:
    assert span_description(tracing.span(name, kind, attrs)) == expected


# ---------------------------------------------------------------------------------------------
# span_status


ERROR = Status(StatusCode.ERROR)

STATUS_CASES: list[tuple[str, SpanKind, dict[str, Any], Optional[Status], str]] = [
    ("server-200-old", SpanKind.SERVER, {"http.method": "GET", "http.status_code": 200}, None, "ok"),
    ("server-302", SpanKind.SERVER, {"http.response.status_code": 302}, None, "ok"),
    ("server-404-stable", SpanKind.SERVER, {"http.response.status_code": 404}, None, "not_found"),
    ("server-401", SpanKind.SERVER, {"http.status_code": 401}, None, "unauthenticated"),
    ("server-403", SpanKind.SERVER, {"http.status_code": 403}, None, "permission_denied"),
    ("server-409", SpanKind.SERVER, {"http.status_code": 409}, None, "already_exists"),
    ("server-413", SpanKind.SERVER, {"http.status_code": 413}, None, "failed_precondition"),
    ("server-422", SpanKind.SERVER, {"http.status_code": 422}, None, "invalid_argument"),
    ("server-429", SpanKind.SERVER, {"http.status_code": 429}, None, "resource_exhausted"),
    ("server-499", SpanKind.SERVER, {"http.status_code": 499}, None, "cancelled"),
    ("server-500", SpanKind.SERVER, {"http.response.status_code": 500}, ERROR, "internal_error"),
    ("server-501", SpanKind.SERVER, {"http.status_code": 501}, ERROR, "unimplemented"),
    ("server-504", SpanKind.SERVER, {"http.status_code": 504}, ERROR, "deadline_exceeded"),
    ("client-503-error-old", SpanKind.CLIENT, {"http.status_code": 503}, ERROR, "unavailable"),
    ("client-503-error-stable", SpanKind.CLIENT, {"http.response.status_code": 503}, ERROR, "unavailable"),
    ("client-404-unset", SpanKind.CLIENT, {"http.response.status_code": 404}, None, "not_found"),
    ("code-as-string", SpanKind.CLIENT, {"http.status_code": "404"}, None, "not_found"),
    ("error-with-200", SpanKind.CLIENT, {"http.status_code": 200}, ERROR, "internal_error"),
    ("error-plain", SpanKind.INTERNAL, {}, ERROR, "internal_error"),
    ("error-timeout", SpanKind.CLIENT, {"error.type": "httpx.ReadTimeout"}, ERROR, "deadline_exceeded"),
    (
        "error-cancelled",
        SpanKind.INTERNAL,
        {"error.type": "asyncio.exceptions.CancelledError"},
        ERROR,
        "cancelled",
    ),
    ("error-connect", SpanKind.CLIENT, {"error.type": "httpx.ConnectError"}, ERROR, "unavailable"),
    ("error-type-code", SpanKind.CLIENT, {"error.type": "504"}, ERROR, "deadline_exceeded"),
    ("error-valueerror", SpanKind.INTERNAL, {"error.type": "ValueError"}, ERROR, "internal_error"),
    ("otel-ok", SpanKind.INTERNAL, {}, Status(StatusCode.OK), "ok"),
    ("otel-unset", SpanKind.INTERNAL, {}, None, "ok"),
    (
        "grpc-not-found",
        SpanKind.CLIENT,
        {"rpc.system": "grpc", "rpc.grpc.status_code": 5},
        ERROR,
        "not_found",
    ),
    ("grpc-ok", SpanKind.SERVER, {"rpc.system": "grpc", "rpc.grpc.status_code": 0}, None, "ok"),
    ("grpc-unavailable", SpanKind.CLIENT, {"rpc.grpc.status_code": 14}, ERROR, "unavailable"),
    (
        "asgi-send-500-unset",
        SpanKind.INTERNAL,
        {"asgi.event.type": "http.response.start", "http.status_code": 500},
        None,
        "ok",
    ),
]


@pytest.mark.parametrize(
    ("kind", "attrs", "status", "expected"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES]
)
def test_span_status(
    tracing: Tracing, kind: SpanKind, attrs: dict[str, Any], status: Optional[Status], expected: str
) -> None:
    assert span_status(tracing.span("s", kind, attrs, status)) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (100, "ok"),
        (200, "ok"),
        (204, "ok"),
        (399, "ok"),
        (400, "invalid_argument"),
        (401, "unauthenticated"),
        (403, "permission_denied"),
        (404, "not_found"),
        (409, "already_exists"),
        (413, "failed_precondition"),
        (429, "resource_exhausted"),
        (499, "cancelled"),
        (500, "internal_error"),
        (501, "unimplemented"),
        (502, "internal_error"),
        (503, "unavailable"),
        (504, "deadline_exceeded"),
        (600, "unknown_error"),
        (0, "unknown_error"),
    ],
)
def test_http_status_table(code: int, expected: str) -> None:
    assert http_status_to_span_status(code) == expected


def test_http_table_matches_sentry_sdk() -> None:
    tracing_mod = pytest.importorskip("sentry_sdk.tracing")
    for code in range(100, 600):
        if code == 499:
            continue  # we add 499 -> cancelled (nginx "client closed request")
        assert http_status_to_span_status(code) == tracing_mod.get_span_status_from_http_code(code), code


def test_every_status_we_can_emit_is_accepted_by_relay(tracing: Tracing) -> None:
    children = []
    with tracing.tracer.start_as_current_span("root", kind=SpanKind.SERVER):
        for code in (200, 400, 401, 403, 404, 409, 413, 429, 499, 500, 501, 503, 504, 600):
            children.append(tracing.span(f"c{code}", SpanKind.CLIENT, {"http.status_code": code}))
        for grpc in range(17):
            children.append(tracing.span(f"g{grpc}", SpanKind.CLIENT, {"rpc.grpc.status_code": grpc}))
    root = tracing.finished()[-1]
    event = transaction_event(root, children, DEFAULTS)
    emitted = {s["status"] for s in event["spans"]}
    assert emitted <= set(ALL_STATUSES)
    assert emitted == set(ALL_STATUSES)
    out = relay(event)
    for sent, stored in zip(event["spans"], out["spans"]):
        if sent["status"] == "unknown_error":
            # Relay re-spells it: "unknown" in current Relay, "internal_error" in sentry-relay 0.10.1
            assert stored["status"] in {"unknown_error", "unknown", "internal_error"}
        else:
            assert stored["status"] == sent["status"]


# ---------------------------------------------------------------------------------------------
# json_safe


def test_json_safe() -> None:
    assert json_safe(("a", "b")) == ["a", "b"]
    assert json_safe(b"abc") == "abc"
    assert json_safe(b"\xff\x00") == "\\xff\x00"
    assert json_safe(float("nan")) == "nan"
    assert json_safe(float("inf")) == "inf"
    assert json_safe(2**70) == str(2**70)
    assert json_safe(-(2**63)) == -(2**63)
    assert json_safe(True) is True
    assert json_safe(1.5) == 1.5
    assert json_safe({"k": (1, b"x", {"n": (None,)})}) == {"k": [1, "x", {"n": [None]}]}
    assert json_safe(object.__new__(object)).startswith("<object object")


# ---------------------------------------------------------------------------------------------
# transaction_event


def test_request_transaction_shape(tracing: Tracing) -> None:
    root = build_request_trace(tracing)
    children = children_of(tracing, root)
    event = transaction_event(root, children, DEFAULTS)

    root_ctx = root.get_span_context()
    assert root_ctx is not None
    trace_id = format_trace_id(root_ctx.trace_id)

    assert event["type"] == "transaction"
    assert HEX32.match(event["event_id"])
    assert event["platform"] == "python"
    assert event["transaction"] == "/v1/items/{item_id}"
    assert event["transaction_info"] == {"source": "route"}
    assert root.start_time is not None and root.end_time is not None
    assert event["start_timestamp"] == pytest.approx(root.start_time / 1e9)
    assert event["timestamp"] == pytest.approx(root.end_time / 1e9)
    assert event["release"] == "shop@1.2.3"
    assert event["environment"] == "production"
    assert event["server_name"] == "web-1"
    assert event["sdk"]["name"] == "otel_sentry"
    assert event["request"] == {
        "method": "GET",
        "url": "http://testserver/v1/items/3",
        "query_string": "secret=1",
    }
    assert event["tags"] == {"http.status_code": "200"}
    assert event["contexts"]["response"] == {"status_code": 200}

    tc = event["contexts"]["trace"]
    assert tc["trace_id"] == trace_id
    assert tc["span_id"] == format_span_id(root_ctx.span_id)
    assert "parent_span_id" not in tc
    assert tc["op"] == "http.server"
    assert tc["status"] == "ok"
    assert tc["origin"] == "auto.otel"
    assert tc["data"]["http.route"] == "/v1/items/{item_id}"
    assert "dynamic_sampling_context" not in tc  # only with a sample rate
    assert "sentry.sample_rate" not in tc["data"]

    otel = event["contexts"]["otel"]
    assert otel["attributes"]["http.route"] == "/v1/items/{item_id}"
    assert otel["resource"]["service.name"] == "shop"

    spans = event["spans"]
    assert len(spans) == len(children) == 7
    assert [s["start_timestamp"] for s in spans] == sorted(s["start_timestamp"] for s in spans)
    for s in spans:
        assert s["trace_id"] == trace_id
        assert HEX16.match(s["span_id"])
        assert s["parent_span_id"] == tc["span_id"]
        assert s["origin"] == "auto.otel"
        assert event["start_timestamp"] <= s["start_timestamp"] <= s["timestamp"] <= event["timestamp"]
        assert isinstance(s["data"], dict)

    by_op = {s["op"]: s for s in spans}
    assert set(by_op) == {"db", "db.redis", "http.client", "gen_ai.chat", "middleware.asgi.send"}
    assert by_op["db"]["description"] == "SELECT * FROM items WHERE id = ?"
    assert by_op["db.redis"]["description"] == "GET item:?"
    assert by_op["gen_ai.chat"]["description"] == "chat gpt-4o"
    assert by_op["gen_ai.chat"]["data"]["gen_ai.response.finish_reasons"] == ["stop"]  # tuple -> list
    assert by_op["gen_ai.chat"]["data"]["gen_ai.usage.input_tokens"] == 12
    assert by_op["gen_ai.chat"]["kind"] == "client"
    clients = [s for s in spans if s["op"] == "http.client"]
    assert {c["description"] for c in clients} == {
        "GET https://api.example.com:8443/v2/prices",
        "POST http://inventory.internal/reserve",
    }
    failing = next(c for c in clients if c["description"].startswith("POST"))
    assert failing["status"] == "unavailable"
    assert failing["data"]["sentry.status.message"] == "RuntimeError: inventory unavailable"
    ok_client = next(c for c in clients if c["description"].startswith("GET"))
    assert ok_client["status"] == "ok"
    assert all(s["data"]["otel.scope.name"] == "tests.transactions" for s in spans)

    # Relay accepts it, and what we set survives normalization.
    out = relay(event)
    assert out["type"] == "transaction"
    assert out["transaction"] == "/v1/items/{item_id}"
    assert out["transaction_info"]["source"] == "route"
    assert out["contexts"]["trace"]["op"] == "http.server"
    assert out["contexts"]["trace"]["status"] == "ok"
    assert out["contexts"]["trace"]["trace_id"] == trace_id
    assert len(out["spans"]) == len(spans)
    assert [(s["span_id"], s["op"], s["status"], s["description"]) for s in out["spans"]] == [
        (s["span_id"], s["op"], s["status"], s["description"]) for s in spans
    ]
    assert out["release"] == "shop@1.2.3"
    assert out["environment"] == "production"
    assert ["server_name", "web-1"] in out["tags"]  # Relay moves server_name into tags


def test_remote_parent(tracing: Tracing) -> None:
    remote = NonRecordingSpan(
        SpanContext(
            trace_id=REMOTE_TRACE_ID,
            span_id=REMOTE_SPAN_ID,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    root = build_request_trace(tracing, parent=remote)
    assert root.parent is not None and root.parent.is_remote
    event = transaction_event(root, children_of(tracing, root), DEFAULTS)
    tc = event["contexts"]["trace"]
    assert tc["trace_id"] == format_trace_id(REMOTE_TRACE_ID)
    assert tc["parent_span_id"] == format_span_id(REMOTE_SPAN_ID)
    assert all(s["trace_id"] == tc["trace_id"] for s in event["spans"])
    out = relay(event)
    assert out["contexts"]["trace"]["parent_span_id"] == format_span_id(REMOTE_SPAN_ID)


def test_sample_rate_recorded_like_sentry_sdk(tracing: Tracing) -> None:
    root = build_request_trace(tracing)
    event = transaction_event(root, children_of(tracing, root), DEFAULTS, sample_rate=0.25)
    tc = event["contexts"]["trace"]
    assert tc["data"]["sentry.sample_rate"] == 0.25
    dsc = tc["dynamic_sampling_context"]
    assert dsc == {
        "trace_id": tc["trace_id"],
        "sampled": "true",
        "sample_rate": "0.25",
        "environment": "production",
        "release": "shop@1.2.3",
        "transaction": "/v1/items/{item_id}",
    }
    out = relay(event)
    # Relay keeps the DSC as an unknown trace-context field: the envelope builder must pop it
    assert out["contexts"]["trace"]["dynamic_sampling_context"]["sample_rate"] == "0.25"
    assert out["contexts"]["trace"]["data"]["sentry.sample_rate"] == 0.25


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.1, float("nan"), float("inf"), True])
def test_invalid_sample_rate_ignored(tracing: Tracing, bad: Any) -> None:
    root = tracing.span("job")
    event = transaction_event(root, [], DEFAULTS, sample_rate=bad)
    assert "sentry.sample_rate" not in event["contexts"]["trace"]["data"]
    assert "dynamic_sampling_context" not in event["contexts"]["trace"]
    relay(event)


def test_explicit_transaction_name(tracing: Tracing) -> None:
    root = build_request_trace(tracing)
    event = transaction_event(root, [], DEFAULTS, transaction_name="items.get")
    assert event["transaction"] == "items.get"
    assert event["transaction_info"] == {"source": "custom"}
    assert event["spans"] == []
    assert relay(event)["transaction"] == "items.get"


def test_url_source_without_route_is_sanitized_by_relay(tracing: Tracing) -> None:
    root = tracing.span(
        "GET",
        SpanKind.SERVER,
        {"http.request.method": "GET", "url.path": "/v1/orders/123456", "http.response.status_code": 404},
    )
    event = transaction_event(root, [], DEFAULTS, sample_rate=1.0)
    # like sentry-sdk, a url-sourced (low quality) name stays out of the DSC
    assert "transaction" not in event["contexts"]["trace"]["dynamic_sampling_context"]
    assert event["transaction"] == "/v1/orders/123456"
    assert event["transaction_info"] == {"source": "url"}
    assert event["contexts"]["trace"]["status"] == "not_found"
    assert "url" not in event["request"]  # no host known
    out = relay(event)
    assert out["transaction"] == "/v1/orders/*"
    assert out["transaction_info"]["source"] == "sanitized"
    assert out["contexts"]["trace"]["status"] == "not_found"


def test_internal_root_and_minimal_defaults(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("nightly-report") as root_live:
        with tracing.tracer.start_as_current_span("compute"):
            pass
        root_live.set_attribute("rows", 3)
    spans = tracing.finished()
    root = spans[-1]
    event = transaction_event(root, spans[:-1], EventDefaults(None, None, None, sdk_block={}))
    assert event["transaction"] == "nightly-report"
    assert event["transaction_info"] == {"source": "custom"}
    assert event["contexts"]["trace"]["op"] == "function"
    assert event["spans"][0]["op"] == "function"
    for key in ("release", "environment", "server_name", "sdk", "request", "tags"):
        assert key not in event
    relay(event)


def test_consumer_root_is_task_with_links(tracing: Tracing) -> None:
    producer_ctx = SpanContext(REMOTE_TRACE_ID, REMOTE_SPAN_ID, is_remote=True, trace_flags=TraceFlags(1))
    root = tracing.tracer.start_span(
        "process orders",
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.operation.type": "process"},
        links=[Link(producer_ctx, {"messaging.message.id": "m1"})],
    )
    root.end()
    event = transaction_event(tracing.finished()[-1], [], DEFAULTS)
    assert event["transaction_info"] == {"source": "task"}
    assert event["contexts"]["trace"]["op"] == "queue.process"
    assert event["contexts"]["trace"]["links"] == [
        {
            "trace_id": format_trace_id(REMOTE_TRACE_ID),
            "span_id": format_span_id(REMOTE_SPAN_ID),
            "sampled": True,
            "attributes": {"messaging.message.id": "m1"},
        }
    ]
    relay(event)


def test_child_links_survive_relay(tracing: Tracing) -> None:
    other = SpanContext(REMOTE_TRACE_ID, REMOTE_SPAN_ID, is_remote=True, trace_flags=TraceFlags(0))
    with tracing.tracer.start_as_current_span("root"):
        tracing.tracer.start_span("batch", links=[Link(other)]).end()
    child, root = tracing.finished()
    event = transaction_event(root, [child], DEFAULTS)
    assert event["spans"][0]["links"] == [
        {
            "trace_id": format_trace_id(REMOTE_TRACE_ID),
            "span_id": format_span_id(REMOTE_SPAN_ID),
            "sampled": False,
        }
    ]
    out = relay(event)
    assert out["spans"][0]["links"][0]["span_id"] == format_span_id(REMOTE_SPAN_ID)


def test_span_limit_keeps_earliest(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("bulk"):
        for i in range(MAX_SPANS + 5):
            tracing.tracer.start_span(
                f"item {i}", start_time=1_700_000_000_000_000_000 + (MAX_SPANS + 5 - i)
            ).end(end_time=1_700_000_000_000_000_000 + 10_000)
    spans = tracing.finished()
    root, children = spans[-1], spans[:-1]
    event = transaction_event(root, children, DEFAULTS)
    assert len(event["spans"]) == MAX_SPANS == 1000
    names = {s["description"] for s in event["spans"]}
    # the five *latest-starting* children (i = 0..4) were dropped
    assert not names & {f"item {i}" for i in range(5)}
    relay(event)


def test_root_duplicate_other_trace_and_orphans(tracing: Tracing) -> None:
    start = tracing.tracer.start_as_current_span
    with start("root"), start("middle"), start("leaf"):
        pass
    leaf, middle, root = tracing.finished()
    with tracing.tracer.start_as_current_span("unrelated"):
        pass
    unrelated = tracing.finished()[-1]
    # "middle" is not passed: "leaf" becomes an orphan that keeps its parent id
    event = transaction_event(root, [root, leaf, unrelated], DEFAULTS)
    assert [s["description"] for s in event["spans"]] == ["leaf"]
    middle_ctx = middle.get_span_context()
    assert middle_ctx is not None
    assert event["spans"][0]["parent_span_id"] == format_span_id(middle_ctx.span_id)
    relay(event)


def test_end_before_start_is_clamped(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("root"):
        tracing.tracer.start_span("backwards", start_time=2_000_000_000_000_000_000).end(
            end_time=1_999_999_999_000_000_000
        )
    child, root = tracing.finished()
    event = transaction_event(root, [child], DEFAULTS)
    assert event["spans"][0]["timestamp"] == event["spans"][0]["start_timestamp"]
    relay(event)  # Relay raises "end timestamp is smaller than start timestamp" otherwise


def test_odd_attribute_values_are_json_safe(tracing: Tracing) -> None:
    with tracing.tracer.start_as_current_span("root", attributes={"tags": ("a", "b")}):
        tracing.tracer.start_span(
            "odd",
            attributes={
                "blob": b"bin\xc3\xa9",
                "nan": float("nan"),
                "inf": float("-inf"),
                "huge": 2**70,
                "ints": (1, 2, 3),
                "nested": {"k": ("v",)},
            },
        ).end()
    child, root = tracing.finished()
    event = transaction_event(root, [child], DEFAULTS)
    data = event["spans"][0]["data"]
    assert data["blob"] == "bin\u00e9"  # SDKs < 1.45 decode bytes themselves (and drop non-UTF-8)
    assert data["nan"] == "nan"
    assert data["inf"] == "-inf"
    assert data["huge"] == str(2**70)
    assert data["ints"] == [1, 2, 3]
    if child.attributes is not None and "nested" in child.attributes:  # mapping values: SDK >= 1.4x
        assert data["nested"] == {"k": ["v"]}
    assert event["contexts"]["otel"]["attributes"]["tags"] == ["a", "b"]
    out = relay(event)
    assert out["spans"][0]["data"]["huge"] == str(2**70)  # Relay would have turned the int into 0
    assert math.isclose(out["start_timestamp"], event["start_timestamp"], abs_tol=1e-5)


def test_root_without_valid_context_raises(tracing: Tracing) -> None:
    root = tracing.span("root")
    bogus = ReadableSpan(name="x", context=None, attributes={})
    with pytest.raises(ValueError):
        transaction_event(bogus, [], DEFAULTS)
    # children without a context are skipped
    assert transaction_event(root, [bogus], DEFAULTS)["spans"] == []


def test_real_sqlite3_instrumentation(tracing: Tracing) -> None:
    sqlite_mod = pytest.importorskip("opentelemetry.instrumentation.sqlite3")
    instrumentor = sqlite_mod.SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=tracing.provider)
    try:
        with tracing.tracer.start_as_current_span("job"):
            conn = sqlite3.connect(":memory:")
            cur = conn.cursor()
            cur.execute("CREATE TABLE items (id INTEGER, name TEXT)")
            cur.execute("SELECT name FROM items WHERE id = ?", (3,))
            conn.close()
    finally:
        instrumentor.uninstrument()
    spans = tracing.finished()
    root = spans[-1]
    event = transaction_event(root, spans[:-1], DEFAULTS)
    assert [(s["op"], s["description"]) for s in event["spans"]] == [
        ("db", "CREATE TABLE items (id INTEGER, name TEXT)"),
        ("db", "SELECT name FROM items WHERE id = ?"),
    ]
    relay(event)


def test_real_fastapi_request(tracing: Tracing) -> None:
    fastapi = pytest.importorskip("fastapi")
    fastapi_instr = pytest.importorskip("opentelemetry.instrumentation.fastapi")
    testclient = pytest.importorskip("fastapi.testclient")

    app = fastapi.FastAPI()

    @app.get("/v1/items/{item_id}")
    def get_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise fastapi.HTTPException(status_code=404)
        return {"id": item_id}

    fastapi_instr.FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider)
    try:
        with testclient.TestClient(app) as client:
            assert client.get("/v1/items/3?q=1").status_code == 200
            assert client.get("/v1/items/0").status_code == 404
    finally:
        fastapi_instr.FastAPIInstrumentor.uninstrument_app(app)

    spans = tracing.finished()
    roots = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(roots) == 2
    statuses = []
    for root in roots:
        root_ctx = root.get_span_context()
        assert root_ctx is not None
        kids = [s for s in spans if s.parent is not None and s.parent.span_id == root_ctx.span_id]
        event = transaction_event(root, kids, DEFAULTS)
        assert event["transaction"] == "/v1/items/{item_id}"
        assert event["transaction_info"] == {"source": "route"}
        assert event["contexts"]["trace"]["op"] == "http.server"
        assert {s["op"] for s in event["spans"]} == {"middleware.asgi.send"}
        assert all(s["status"] == "ok" for s in event["spans"])
        statuses.append(event["contexts"]["trace"]["status"])
        out = relay(event)
        assert out["contexts"]["trace"]["status"] == event["contexts"]["trace"]["status"]
    assert sorted(statuses) == ["not_found", "ok"]


def _all_keys(obj: Any) -> Sequence[str]:
    keys: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            keys.append(k)
            keys.extend(_all_keys(v))
    elif isinstance(obj, list):
        for v in obj:
            keys.extend(_all_keys(v))
    return keys


def test_no_private_keys_leak_into_event(tracing: Tracing) -> None:
    root = build_request_trace(tracing)
    event = transaction_event(root, children_of(tracing, root), DEFAULTS, sample_rate=0.5)
    assert not [k for k in event if k.startswith("_")]  # Relay reports "_dropped_spans" etc. as errors
    assert all(isinstance(k, str) for k in _all_keys(event))
