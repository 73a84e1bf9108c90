"""One run of tests/apps/background_app.py under ``opentelemetry-instrument``, shared by the test
modules that check background work, the capture API in routes and logging (each run costs ~2 s)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).resolve().parents[1] / "apps"

# path -> expected status
ROUTES: Dict[str, int] = {
    "/bg-tasks": 200,
    "/bg-async-task": 200,
    "/fire-and-forget": 200,
    "/gather": 200,
    "/task-group": 500,
    "/awaited-task": 500,
    "/thread": 200,
    "/executor": 200,
    "/loop-callback": 200,
    "/decorated-wrapped": 500,
    "/helper-then-503": 503,
    "/log-then-500": 500,
    "/swallowed": 200,
    "/log-message": 200,
    "/ok": 200,
    "/sentry-debug": 404,  # off unless OTEL_SENTRY_DEBUG_ROUTE is set
}


@dataclass
class Run:
    responses: Dict[str, Tuple[int, Optional[str]]]
    events: List[Dict[str, Any]]
    logs: List[Dict[str, Any]]
    raw: bytes
    output: str
    spans: List[Dict[str, Any]] = field(default_factory=list)

    def events_for(self, route: str) -> List[Dict[str, Any]]:
        return [e for e in self.events if e.get("transaction") == route]


def _run(extra_env: Dict[str, str], routes: Dict[str, int], expected_events: int) -> Run:
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_SERVICE_NAME": "background-app",
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            **extra_env,
        }
        responses: Dict[str, Tuple[int, Optional[str]]] = {}
        with AppProcess("background_app", cwd=APPS, env=env, ready_path="/health") as app:
            for path, status in routes.items():
                response = app.get(path, headers={"Connection": "close"})
                assert response.status_code == status, (path, response.text, app.output())
                body = response.json() if status == 200 else {}
                responses[path] = (response.status_code, body.get("trace_id") or body.get("event_id"))
            # the fire-and-forget task fails 0.3 s after its response
            ingest.wait_for(lambda i: len(i.events()) >= expected_events, 10)
            time.sleep(0.3)  # anything extra (a duplicate) would arrive now
            assert app.stop() == 0, app.output()
            output = app.output()
        return Run(
            responses, ingest.events(), ingest.items("log"), ingest.raw_bytes(), output, receiver.spans()
        )


@functools.cache
def background_run() -> Run:
    """Every route once, default settings."""
    return _run({}, ROUTES, expected_events=11)


@functools.cache
def debug_route_run() -> Run:
    """The debug route enabled at a path of its own, every request sampled."""
    routes = {"/ops/sentry-debug": 200, "/ops/sentry-debug?raise_exception=true": 500, "/ok": 200}
    return _run(
        {"OTEL_SENTRY_DEBUG_ROUTE": "/ops/sentry-debug", "OTEL_TRACES_SAMPLER": "always_on"},
        routes,
        expected_events=2,
    )


@functools.cache
def logging_run() -> Run:
    """The logging routes with sentry-sdk's own init (and logging integration) in the app, the OTel
    logs signal exported to Sentry's logs, and error records of any request as events."""
    routes = {p: ROUTES[p] for p in ("/log-then-500", "/swallowed", "/log-message", "/ok")}
    with SentryIngest() as sdk_ingest:
        run = _run(
            {
                "APP_SENTRY_SDK_DSN": sdk_ingest.dsn(),
                "OTEL_LOGS_EXPORTER": "sentry",
                # sentry-sdk's rule: every error record is an event, whatever the request's outcome
                "OTEL_SENTRY_LOG_EVENTS_IN_OK_REQUESTS": "true",
            },
            routes,
            expected_events=3,
        )
        time.sleep(0.2)
        run.events += sdk_ingest.events()  # whatever sentry-sdk sent on its own (must be nothing)
    return run
