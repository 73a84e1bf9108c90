"""The test harness itself, checked against real clients: sentry-sdk, the OTel SDK + OTLP exporter,
the Spotlight sidecar, and a real `opentelemetry-instrument uvicorn` subprocess."""

from __future__ import annotations

import gzip
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import sentry_sdk
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from sentry_sdk.envelope import Envelope, Item, PayloadRef

from otel_sentry.testing import OtlpReceiver, SentryIngest, parse_envelope
from tests.support.apps import AppProcess
from tests.support.spotlight import Spotlight

pytestmark = pytest.mark.timeout(60)


def _raise_and_capture(client: sentry_sdk.Client, message: str = "boom") -> str:
    """Capture a real exception with ``client`` without touching sentry-sdk's global scope."""
    with sentry_sdk.isolation_scope(), sentry_sdk.new_scope() as scope:
        scope.set_client(client)
        try:
            raise ValueError(message)
        except ValueError:
            event_id = scope.capture_exception()
    assert event_id is not None
    return event_id


def _client(**options: Any) -> sentry_sdk.Client:
    return sentry_sdk.Client(default_integrations=False, auto_enabling_integrations=False, **options)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def _envelope_bytes(event_id: str = "a" * 32) -> bytes:
    envelope = Envelope(headers={"event_id": event_id})
    envelope.add_item(Item(payload=PayloadRef(json={"event_id": event_id, "message": "hi"}), type="event"))
    return envelope.serialize()


# ---------------------------------------------------------------------------------------------
# SentryIngest
# ---------------------------------------------------------------------------------------------


def test_sentry_sdk_event_over_dsn_is_parsed(sentry_ingest: SentryIngest, relay: Any) -> None:
    client = _client(dsn=sentry_ingest.dsn(), release="r1", environment="test")
    try:
        event_id = _raise_and_capture(client, "boom with context")
        client.flush(timeout=5)
    finally:
        client.close(timeout=5)

    assert sentry_ingest.wait_for(lambda ing: len(ing.events()) == 1, timeout=10)
    (envelope,) = sentry_ingest.envelopes()
    assert envelope.path == "/api/1/envelope/"
    assert envelope.headers["event_id"] == event_id
    assert envelope.auth["sentry_key"] == "public"
    assert envelope.auth["sentry_version"] == "7"
    assert envelope.auth["sentry_client"].startswith("sentry.python/")
    # sentry-sdk gzips by default; what we store is the decompressed body.
    assert envelope.content_encoding == "gzip"
    assert envelope.raw.startswith(b"{")
    assert envelope.item_types == ["event"]

    (event,) = sentry_ingest.events()
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "ValueError"
    assert exc["value"] == "boom with context"
    assert exc["stacktrace"]["frames"][-1]["function"] == "_raise_and_capture"
    assert event["release"] == "r1"
    assert b"boom with context" in sentry_ingest.raw_bytes()
    assert sentry_ingest.transactions() == []
    relay.assert_valid(event)


def test_sentry_sdk_spotlight_url_of_ingest(sentry_ingest: SentryIngest) -> None:
    client = _client(dsn=None, spotlight=sentry_ingest.spotlight_url)
    try:
        _raise_and_capture(client, "to the stream")
        client.flush(timeout=5)
    finally:
        client.close(timeout=5)
    assert sentry_ingest.wait_for(lambda ing: len(ing.events()) == 1, timeout=10)
    (envelope,) = sentry_ingest.envelopes()
    assert envelope.path == "/stream"
    assert sentry_ingest.events()[0]["exception"]["values"][0]["value"] == "to the stream"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send it
        (None, lambda b: b),
    ],
)
def test_ingest_decompresses(
    sentry_ingest: SentryIngest, http: httpx.Client, encoding: Any, compress: Any
) -> None:
    body = _envelope_bytes()
    headers = {"Content-Type": "application/x-sentry-envelope"}
    if encoding:
        headers["Content-Encoding"] = encoding
    response = http.post(
        sentry_ingest.url + "/api/7/envelope/?sentry_key=k1", content=compress(body), headers=headers
    )
    assert response.status_code == 200
    assert response.json() == {"id": "a" * 32}
    (envelope,) = sentry_ingest.envelopes()
    assert envelope.raw == body
    assert envelope.path == "/api/7/envelope/"
    assert envelope.auth == {"sentry_key": "k1"}
    assert sentry_ingest.events() == [{"event_id": "a" * 32, "message": "hi"}]


def test_ingest_rejects_unknown_encoding_and_paths(sentry_ingest: SentryIngest, http: httpx.Client) -> None:
    url = sentry_ingest.url
    assert (
        http.post(url + "/api/1/envelope/", content=b"x", headers={"Content-Encoding": "snappy"}).status_code
        == 415
    )
    assert http.post(url + "/api/1/store/", content=_envelope_bytes()).status_code == 404
    assert http.get(url + "/api/1/envelope/").status_code == 405
    bad = http.post(url + "/api/1/envelope/", content=b"not json\n")
    assert bad.status_code == 400
    (envelope,) = sentry_ingest.envelopes()
    assert envelope.error is not None and not envelope.accepted
    assert sentry_ingest.events() == []


def test_parse_envelope_with_length_and_binary_attachment() -> None:
    blob = b"line1\nline2\n\x00\xff"
    data = (
        b'{"event_id":"' + b"b" * 32 + b'"}\n'
        b'{"type":"attachment","length":' + str(len(blob)).encode() + b',"filename":"a.bin"}\n' + blob + b"\n"
        b'{"type":"client_report"}\n{"discarded_events":[{"reason":"queue_overflow","category":"error","quantity":2}]}\n'
        b'{"type":"event","length":2}\n{}'
    )
    headers, items = parse_envelope(data)
    assert headers == {"event_id": "b" * 32}
    assert [h["type"] for h, _ in items] == ["attachment", "client_report", "event"]
    assert items[0][1] == blob
    assert items[1][1]["discarded_events"][0]["quantity"] == 2
    assert items[2][1] == {}
    with pytest.raises(ValueError):
        parse_envelope(b'{}\n{"type":"event","length":99}\n{}')


def test_respond_with_is_programmable(sentry_ingest: SentryIngest, http: httpx.Client) -> None:
    sentry_ingest.respond_with(429, {"X-Sentry-Rate-Limits": "60:error:organization"}, times=2)
    url = sentry_ingest.url + "/api/1/envelope/"
    first = http.post(url, content=_envelope_bytes())
    assert first.status_code == 429
    assert first.headers["x-sentry-rate-limits"] == "60:error:organization"
    assert http.post(url, content=_envelope_bytes()).status_code == 429
    assert http.post(url, content=_envelope_bytes()).status_code == 200
    assert [e.status for e in sentry_ingest.envelopes()] == [429, 429, 200]
    assert len(sentry_ingest.events()) == 1  # rate-limited envelopes are not "stored"

    sentry_ingest.respond_with(503, body="down", times=None)
    for _ in range(3):
        assert http.post(url, content=_envelope_bytes()).text == "down"
    sentry_ingest.reset_responses()
    assert http.post(url, content=_envelope_bytes()).status_code == 200
    sentry_ingest.clear()
    assert sentry_ingest.envelopes() == []


def test_keep_alive_requests_are_fast(sentry_ingest: SentryIngest, http: httpx.Client) -> None:
    """Without TCP_NODELAY each keep-alive request after the first stalls ~40 ms (delayed ACK)."""
    url = sentry_ingest.url + "/api/1/envelope/"
    http.post(url, content=_envelope_bytes())  # connect
    start = time.perf_counter()
    for _ in range(50):
        http.post(url, content=_envelope_bytes())
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"50 keep-alive POSTs took {elapsed:.2f}s"


def test_wait_for_times_out_and_stop_closes_connections(http: httpx.Client) -> None:
    ingest = SentryIngest().start()
    start = time.perf_counter()
    assert ingest.wait_for(lambda i: bool(i.events()), timeout=0.2) is False
    assert 0.15 < time.perf_counter() - start < 2
    url = ingest.url + "/api/1/envelope/"
    assert http.post(url, content=_envelope_bytes()).status_code == 200  # leaves a keep-alive conn
    ingest.stop()
    with pytest.raises(httpx.TransportError):
        http.post(url, content=_envelope_bytes())
    assert len(ingest.envelopes()) == 1


# ---------------------------------------------------------------------------------------------
# OtlpReceiver
# ---------------------------------------------------------------------------------------------


def _provider(exporter: OTLPSpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "harness-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_otlp_exporter_spans_decode(otlp_receiver: OtlpReceiver, compression: Compression) -> None:
    exporter = OTLPSpanExporter(
        endpoint=otlp_receiver.endpoint + "/v1/traces", compression=compression, timeout=5
    )
    provider = _provider(exporter)
    tracer = provider.get_tracer("harness.scope")
    with (
        tracer.start_as_current_span(
            "parent", kind=SpanKind.SERVER, attributes={"http.route": "/x"}
        ) as parent,
        tracer.start_as_current_span(
            "child",
            attributes={"s": "v", "i": 7, "f": 1.5, "b": True, "arr": ["a", "b"], "ints": [1, 2]},
        ) as child,
    ):
        child.add_event("checkpoint", {"n": 1})
        try:
            raise KeyError("missing")
        except KeyError as exc:
            child.record_exception(exc)
            child.set_status(Status(StatusCode.ERROR, "it broke"))
    provider.shutdown()

    assert otlp_receiver.wait_for(lambda r: len(r.spans()) == 2, timeout=10)
    spans = {s["name"]: s for s in otlp_receiver.spans()}
    p, c = spans["parent"], spans["child"]
    pctx, cctx = parent.get_span_context(), child.get_span_context()
    assert p["trace_id"] == c["trace_id"] == f"{pctx.trace_id:032x}"
    assert p["span_id"] == f"{pctx.span_id:016x}" and c["span_id"] == f"{cctx.span_id:016x}"
    assert len(p["trace_id"]) == 32 and len(p["span_id"]) == 16
    assert p["parent_span_id"] is None
    assert c["parent_span_id"] == p["span_id"]
    assert p["kind"] == 2  # SPAN_KIND_SERVER in OTLP numbering
    assert c["kind"] == 1  # INTERNAL
    assert p["attributes"] == {"http.route": "/x"}
    assert c["attributes"] == {"s": "v", "i": 7, "f": 1.5, "b": True, "arr": ["a", "b"], "ints": [1, 2]}
    assert [e["name"] for e in c["events"]] == ["checkpoint", "exception"]
    assert c["events"][0]["attributes"] == {"n": 1}
    exc_attrs = c["events"][1]["attributes"]
    assert exc_attrs["exception.type"] == "KeyError"
    assert "Traceback" in exc_attrs["exception.stacktrace"]
    assert c["status"] == {"code": 2, "message": "it broke"}
    assert p["status"]["code"] == 0
    assert c["resource"]["service.name"] == "harness-test"
    assert c["scope"] == "harness.scope"
    assert 0 < c["start_ns"] <= c["end_ns"]
    expected_encoding = "gzip" if compression is Compression.Gzip else None
    assert {r.content_encoding for r in otlp_receiver.requests("traces")} == {expected_encoding}
    assert b"missing" in otlp_receiver.raw_bytes()


def test_otlp_json_and_other_signals(otlp_receiver: OtlpReceiver, http: httpx.Client) -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "json.scope"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "parentSpanId": "",
                                "name": "json-span",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {
                                        "key": "m",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [{"key": "k", "value": {"boolValue": False}}]
                                            }
                                        },
                                    },
                                ],
                                "status": {"code": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = http.post(otlp_receiver.endpoint + "/v1/traces", json=body)
    assert response.status_code == 200, response.text
    (span,) = otlp_receiver.spans()
    assert (span["trace_id"], span["span_id"], span["parent_span_id"]) == (trace_id, span_id, None)
    assert span["attributes"] == {"n": 42, "m": {"k": False}}
    assert span["kind"] == 3 and span["status"] == {"code": 1, "message": ""}
    assert span["resource"] == {"service.name": "json-svc"} and span["scope"] == "json.scope"
    assert span["start_ns"] == 1544712660000000000

    proto = {"Content-Type": "application/x-protobuf"}
    assert http.post(otlp_receiver.endpoint + "/v1/metrics", content=b"", headers=proto).status_code == 200
    assert (
        http.post(
            otlp_receiver.endpoint + "/v1/logs",
            content=gzip.compress(b"\x0a\x00"),
            headers={**proto, "Content-Encoding": "gzip"},
        ).status_code
        == 200
    )
    assert (otlp_receiver.metrics_count, otlp_receiver.logs_count) == (1, 1)
    assert (
        http.post(otlp_receiver.endpoint + "/v1/traces", content=b"\xff\xff", headers=proto).status_code
        == 400
    )
    assert http.post(otlp_receiver.endpoint + "/v1/nope", content=b"").status_code == 404
    assert len(otlp_receiver.spans()) == 1
    otlp_receiver.clear()
    assert otlp_receiver.spans() == [] and otlp_receiver.requests() == []


def test_otlp_respond_with_fails_the_export(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.respond_with(400, {"Content-Type": "text/plain"}, b"bad request")
    exporter = OTLPSpanExporter(endpoint=otlp_receiver.endpoint + "/v1/traces", timeout=5)
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("rejected") as span:
        pass
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert otlp_receiver.spans() == []
    assert [r.status for r in otlp_receiver.requests("traces")] == [400]
    assert exporter.export([span]) is SpanExportResult.SUCCESS  # type: ignore[list-item]
    assert [s["name"] for s in otlp_receiver.spans()] == ["rejected"]
    exporter.shutdown()  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------------------------------
# Spotlight sidecar (real, from npm)
# ---------------------------------------------------------------------------------------------


def test_spotlight_sidecar_receives_sentry_sdk_envelope(spotlight: Spotlight) -> None:
    client = _client(dsn=None, spotlight=spotlight.url, release="spot-1")
    try:
        event_id = _raise_and_capture(client, "seen by spotlight")
        client.flush(timeout=5)
    finally:
        client.close(timeout=5)

    assert spotlight.wait_for(lambda s: len(s.events()) == 1, timeout=15), spotlight.output()
    (headers, _items) = spotlight.envelopes()[0]
    assert headers["event_id"] == event_id
    (event,) = spotlight.events()
    assert event["exception"]["values"][0]["type"] == "ValueError"
    assert event["exception"]["values"][0]["value"] == "seen by spotlight"

    # The user-facing CLI sees it too (it replays the sidecar's buffer).
    lines = spotlight.tail(["errors"], until=lambda got: any(g.get("event_id") == event_id for g in got))
    line = next(g for g in lines if g.get("event_id") == event_id)
    assert line["exception_type"] == "ValueError"
    assert line["exception_value"] == "seen by spotlight"
    assert line["release"] == "spot-1"


def test_spotlight_accepts_raw_envelope_post(spotlight: Spotlight, http: httpx.Client) -> None:
    """A hand-built sentry_sdk Envelope, gzipped, as our own transport would send it."""
    body = gzip.compress(_envelope_bytes("c" * 32))
    response = http.post(
        spotlight.url,
        content=body,
        headers={"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert spotlight.wait_for(lambda s: any(e.get("event_id") == "c" * 32 for e in s.events()), timeout=10)
    assert spotlight.events()[0]["message"] == "hi"


def test_spotlight_missing_binary_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tests.support.spotlight as spotlight_support

    monkeypatch.setattr(spotlight_support, "SPOTLIGHT_BIN", tmp_path / "nope" / "spotlight")
    with pytest.raises(RuntimeError, match="npm ci"):
        Spotlight().start()


# ---------------------------------------------------------------------------------------------
# AppProcess (harness only: the distro under test is exercised elsewhere)
# ---------------------------------------------------------------------------------------------

_APP = """
import atexit, json, os, sys

MARKER = os.environ["HARNESS_MARKER"]
atexit.register(lambda: open(MARKER, "w").write("atexit ran"))


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/ready":
        body = b"ok"
    else:
        print("handling", scope["path"], flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        env = {k: v for k, v in os.environ.items() if k.startswith(("OTEL_", "SENTRY_", "HARNESS_"))}
        body = json.dumps({"env": env, "argv": sys.argv, "executable": sys.executable}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def test_app_process_runs_like_a_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "harness_app.py").write_text(_APP)
    marker = tmp_path / "marker"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "leaked-from-shell")
    monkeypatch.setenv("SENTRY_DSN", "http://leak@example.invalid/1")
    env = {"HARNESS_MARKER": str(marker), "OTEL_SDK_DISABLED": "true"}
    with AppProcess("harness_app", cwd=tmp_path, env=env, ready_path="/ready") as app:
        assert app.url.startswith("http://127.0.0.1:")
        data = app.get("/env").json()
        child_env = data["env"]
        # The developer's shell does not leak in (the distro may still set its own OTEL_* defaults).
        assert child_env.get("OTEL_SERVICE_NAME") != "leaked-from-shell"
        assert "leak@" not in child_env.get("SENTRY_DSN", "")
        assert child_env["HARNESS_MARKER"] == str(marker)
        assert child_env["OTEL_SDK_DISABLED"] == "true"
        assert Path(data["executable"]).parent == Path(sys.executable).parent
        assert app.post("/env").status_code == 200
        code = app.stop()
        assert code == 0, app.output()
        assert marker.read_text() == "atexit ran"
        assert "handling /env" in app.stdout()
        assert "to stderr" in app.stderr()
        assert "Uvicorn running on http://127.0.0.1:" in app.output()
    assert app.proc is not None and app.proc.poll() is not None


def test_app_process_startup_failure_reports_output(tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("raise SystemExit('cannot start: missing config')\n")
    with (
        pytest.raises(RuntimeError, match="cannot start: missing config"),
        AppProcess("broken_app", cwd=tmp_path),
    ):
        pass
