"""A request the sampling gate lets skip the instrumentation's middleware records the same
``http.server`` metrics as one that went through it: the same instruments, points, attribute sets and
counts, in every semantic-convention mode (otel_sentry._gate_metrics)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.instrumentation.fastapi import _get_default_span_details
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry import _sampling_gate
from otel_sentry._rules import Rules
from otel_sentry._sampler import OtelSentrySampler


def _app() -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @router.post("/items")
    async def create(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.include_router(router, prefix="/v2")

    @app.get("/teapot")
    async def teapot() -> PlainTextResponse:
        return PlainTextResponse("short and stout", status_code=418)

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPException(status_code=503)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


# (method, path, body, host): repeated and interleaved, ids in paths, several hosts
TRAFFIC = [
    ("GET", "/v2/items/1", b"", b"api.example"),
    ("GET", "/v2/items/2", b"", b"api.example"),
    ("POST", "/v2/items", b'{"name": "tea"}', b"api.example"),
    ("GET", "/teapot", b"", b"other.example:8080"),
    ("GET", "/unavailable", b"", b"api.example"),
    ("GET", "/boom", b"", b"api.example"),
    ("GET", "/nowhere", b"", b"api.example"),
    ("GET", "/v2/items/not-a-number", b"", b"api.example"),
] * 3


async def _request(app: Any, routed: FastAPI, method: str, path: str, body: bytes, host: bytes) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    headers = [(b"host", host), (b"user-agent", b"tests")]
    if body:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"q=1",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "app": routed,  # what Starlette sets before its middleware stack runs
    }
    with contextlib.suppress(RuntimeError):  # the unhandled error escapes, as under a server
        await app(scope, receive, send)


def _points(gated: bool) -> dict[tuple[str, frozenset[tuple[str, Any]]], tuple[Any, ...]]:
    """Every point the instrumentation's instruments hold after the traffic, with the sampler
    dropping every request: gated, the gate measures them; not gated, the middleware does."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    sampler = OtelSentrySampler(Rules().with_sampling([("*", 0.0)]), "production")
    routed = _app()
    middleware = _sampling_gate.GatedMiddleware(
        routed,
        tracer_provider=TracerProvider(sampler=sampler),
        meter_provider=meters,
        default_span_details=_get_default_span_details,
        exclude_spans=["receive", "send"],
    )
    _sampling_gate.configure_gate((), drop_unsampled=gated, measure=True)
    try:

        async def run() -> None:
            for request in TRAFFIC:
                await _request(middleware, routed, *request)

        asyncio.run(run())
    finally:
        _sampling_gate.configure_gate((), drop_unsampled=False)
    points: dict[tuple[str, frozenset[tuple[str, Any]]], tuple[Any, ...]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, frozenset(dict(point.attributes or {}).items()))
                    if isinstance(point, HistogramDataPoint):
                        # durations differ run to run; sizes must not
                        total = None if "duration" in metric.name else point.sum
                        points[key] = (point.count, total)
                    else:
                        points[key] = (point.value,)
    return points


@pytest.fixture(params=["default", "http", "http/dup"])
def semconv_mode(request: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The instrumentation reads its semantic-convention mode once per process: read it again."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", request.param)
    stability = _OpenTelemetrySemanticConventionStability
    saved = dict(stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING)
    stability._initialized = False
    stability._initialize()
    yield request.param
    stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING = saved
    stability._initialized = True


def test_a_bypassed_request_records_what_the_middleware_would_have(semconv_mode: str) -> None:
    ungated, gated = _points(gated=False), _points(gated=True)
    names = {name for name, _ in ungated}
    # the instruments of the mode: durations and sizes, and active requests back to zero
    assert names >= ({"http.server.active_requests"} | {n for n in names if "duration" in n})
    assert any("duration" in name for name in names), names
    assert any(attrs for _, attrs in ungated), "points without attributes: the traffic was not measured"
    assert gated == ungated
    counts = [v[0] for (name, _), v in gated.items() if "duration" in name]
    assert sum(counts) == len(TRAFFIC) * (2 if semconv_mode == "http/dup" else 1)
    assert all(v == (0,) for (name, _), v in gated.items() if name == "http.server.active_requests")


def test_requests_the_middleware_measures_are_not_measured_twice() -> None:
    """Sampled requests go through the middleware and are measured there, once."""
    reader = InMemoryMetricReader()
    sampler = OtelSentrySampler(Rules().with_sampling([("*", 1.0)]), "production")
    routed = _app()
    middleware = _sampling_gate.GatedMiddleware(
        routed,
        tracer_provider=TracerProvider(sampler=sampler),
        meter_provider=MeterProvider(metric_readers=[reader]),
        default_span_details=_get_default_span_details,
    )
    _sampling_gate.configure_gate((), drop_unsampled=True, measure=True)
    try:
        asyncio.run(_request(middleware, routed, "GET", "/v2/items/1", b"", b"api.example"))
    finally:
        _sampling_gate.configure_gate((), drop_unsampled=False)
    data = reader.get_metrics_data()
    assert data is not None
    counts = [
        point.count
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if "duration" in metric.name
        for point in metric.data.data_points
    ]
    assert counts == [1]
