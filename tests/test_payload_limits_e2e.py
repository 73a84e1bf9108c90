"""One huge exception must not cost a whole batch: end to end with the real collector.

The app (tests/apps/tier_app.py under ``opentelemetry-instrument`` with otel_sentry) exports over
OTLP/HTTP, then over OTLP/gRPC (``opentelemetry-exporter-otlp-proto-grpc`` on the app's PYTHONPATH,
not in the venv: tests/test_bad_config.py checks the message given when it is missing), to
the otelcol-otel-sentry collector with default receiver limits, which forwards to a loopback OTLP
receiver. Among normal requests: a 20 MB exception message, an exception whose
repr is 200 MB, and a span too big for any request. Bounded: ~100 requests per protocol, about
25 s each.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest

from otel_sentry._payload_limits import (
    DEFAULT_VALUE_LENGTH,
    MAX_REQUEST_BYTES,
    TRUNCATED_ATTRIBUTE,
    TRUNCATION_MARK,
)
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess
from tests.support.collector import Collector, CollectorUnavailable, collector_binary
from tests.support.grpc_exporter import grpc_exporter_dir

# a cold collector build (the first test to need it) takes minutes
pytestmark = pytest.mark.timeout(2000)
APPS = Path(__file__).parent / "apps"
NORMAL = 30  # per group, three groups
# default receiver limits: nothing about sizes is configured
PASSTHROUGH = """
extensions:
  health_check: {endpoint: "${env:HEALTH_CHECK_ENDPOINT}"}
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "${env:OTLP_GRPC_ENDPOINT}"}
      http: {endpoint: "${env:OTLP_HTTP_ENDPOINT}"}
exporters:
  otlp_http/backend: {endpoint: "${env:OTEL_SENTRY_BACKEND_ENDPOINT}"}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      readers:
        - pull: {exporter: {prometheus: {host: "${env:TELEMETRY_HOST}", port: "${env:TELEMETRY_PORT}"}}}
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp_http/backend]}
"""


def _event_chars(span: Dict[str, Any]) -> int:
    return sum(len(str(v)) for event in span["events"] for v in event["attributes"].values())


@pytest.fixture(scope="module", params=["http/protobuf", "grpc"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    protocol = request.param
    # the gRPC exporter is not in the test venv (tests/test_bad_config.py checks the message when it
    # is missing): the app finds it on its PYTHONPATH
    extra = {"PYTHONPATH": str(grpc_exporter_dir())} if protocol == "grpc" else {}
    try:
        collector_binary()
    except CollectorUnavailable as exc:
        pytest.skip(str(exc))
    config = tmp_path_factory.mktemp("collector") / "passthrough.yaml"
    config.write_text(PASSTHROUGH)
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(OtlpReceiver())
        ingest = stack.enter_context(SentryIngest())
        collector = stack.enter_context(
            Collector([config], {"OTEL_SENTRY_BACKEND_ENDPOINT": backend.endpoint}, name="passthrough")
        )
        env = {
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            # gRPC: the receiver's default 4 MiB message limit; HTTP: its 20 MiB body limit
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": (
                collector.http_endpoint
                if protocol == "http/protobuf"
                else f"http://{collector.grpc_endpoint}"
            ),
            "SENTRY_ENVIRONMENT": "development",  # every request sampled: all spans are expected
            "OTEL_BSP_SCHEDULE_DELAY": "3000",  # big batches: the huge spans share them with others
            **extra,
        }
        app = AppProcess("tier_app", cwd=APPS, env=env, ready_timeout=60).start()
        statuses: List[int] = []
        try:
            for group, special in enumerate(["/huge-message/20", "/huge-repr/200", "/wide"]):
                for n in range(NORMAL):
                    statuses.append(app.get(f"/ok/{group * NORMAL + n}").status_code)
                # a new connection: uvicorn closes one after an unhandled exception
                statuses.append(httpx.get(app.url + special, timeout=120).status_code)
        finally:
            app.stop(timeout=60)
        backend.wait_for(
            lambda r: sum(s["name"] == "GET /ok/{n}" for s in r.spans()) >= 3 * NORMAL, timeout=20
        )
        requests = backend.requests("traces")
        print(  # the closing-note figures, shown with pytest -s
            f"requests to the backend: {len(requests)}, largest {max(len(r.raw) for r in requests):,} bytes, "
            f"total {sum(len(r.raw) for r in requests):,} bytes; spans {len(backend.spans())}; characters in "
            f"the big spans' events: {[_event_chars(s) for s in backend.spans() if 'huge' in s['name']]}"
        )
        yield {
            "statuses": statuses,
            "spans": backend.spans(),
            "requests": backend.requests("traces"),
            "metrics": collector.metrics(),
            "app_log": app.output(),
            "events": ingest.events(),
        }


def test_every_other_request_arrives(run: Dict[str, Any]) -> None:
    assert run["statuses"] == [200] * NORMAL + [500] + [200] * NORMAL + [500] + [200] * NORMAL + [200]
    ok = [s for s in run["spans"] if s["name"] == "GET /ok/{n}"]
    assert len(ok) == 3 * NORMAL
    assert sum(s["name"] == "work" for s in run["spans"]) == 3 * NORMAL
    assert run["metrics"]["otelcol_receiver_refused_spans"] == 0


@pytest.mark.parametrize("route", ["/huge-message/{mb}", "/huge-repr/{mb}"])
def test_the_big_one_arrives_truncated_and_says_so(run: Dict[str, Any], route: str) -> None:
    (server,) = [s for s in run["spans"] if s["name"] == f"GET {route}"]
    events = [e for e in server["events"] if e["name"] == "exception"]
    assert events
    for event in events:
        for key in ("exception.message", "exception.stacktrace"):
            value = event["attributes"][key]
            assert len(value) == DEFAULT_VALUE_LENGTH and value.endswith(TRUNCATION_MARK), key
        assert event["attributes"]["exception.stacktrace"].startswith("Traceback (most recent call last)")
    assert "exception:exception.message" in server["attributes"][TRUNCATED_ATTRIBUTE]
    # the Sentry issue of the same error is there too, capped as Sentry caps it
    assert any(e["exception"]["values"][-1]["type"] == "ValueError" for e in run["events"])


def test_the_span_too_big_for_any_request_is_dropped_and_counted(run: Dict[str, Any]) -> None:
    names = [s["name"] for s in run["spans"]]
    assert "GET /wide" in names and "wide" not in names
    drops = re.findall(r"dropped span 'wide' .*?; (\d+) dropped so far", run["app_log"])
    assert drops == ["1"]  # counted once, at the exporter, for the OTLP exporter only (Sentry caps its own)
    # and the collector agrees: it refused nothing, and forwarded every span it accepted
    accepted = run["metrics"]["otelcol_receiver_accepted_spans"]
    assert accepted == len(run["spans"])


def test_no_request_is_larger_than_a_stock_collector_accepts(run: Dict[str, Any]) -> None:
    sizes = [len(r.raw) for r in run["requests"]]
    assert max(sizes) <= MAX_REQUEST_BYTES < 4 * 1024 * 1024
