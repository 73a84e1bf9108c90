"""Issue 3 end to end: the seeds' context on every error and request, and no secret leaves.

The demo gateway runs unchanged under ``opentelemetry-instrument``; its auth dependency leaves
``request.state.user_id/email/api_key_id`` as the seeds' app does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from otel_sentry._demo import sign_webhook
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support import relay
from tests.support.apps import AppProcess

GATEWAY = Path(__file__).parent.parent / "examples" / "gateway"
KEY = "gw_live_demo_key_123"
AUTH = {"Authorization": f"Bearer {KEY}", "Connection": "close"}


def chat(app: AppProcess, model: str, path: str = "/v1/chat/completions") -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return app.post(path, json=body, headers=AUTH).status_code


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env_dir = tmp_path_factory.mktemp("gateway")
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "always_on",  # every request's span reaches OTLP for the checks
            "SENTRY_DSN": ingest.dsn(),
            "GATEWAY_DB_PATH": str(env_dir / "gateway.db"),
            "OTEL_SENTRY_SLOW_REQUEST_SECONDS": "0.1",  # the 0.2 s provider timeout counts as slow
        }
        with AppProcess("app", cwd=GATEWAY, env=env, ready_path="/health") as app:
            assert chat(app, "openrouter/timeout") == 500
            assert chat(app, "openrouter/down") == 503
            assert chat(app, "gpt-4") == 200
            body = json.dumps({"type": "invoice.paid", "data": {"object": {"amount": 5}}}).encode()
            headers = {
                "Stripe-Signature": sign_webhook(body),
                "Content-Type": "application/json",
                "Connection": "close",
            }
            assert app.post("/api/payments/webhook", content=body, headers=headers).status_code == 500
            assert (
                app.post(
                    "/v1/images/generations", json={"prompt": "x", "size": "4096x4096"}, headers=AUTH
                ).status_code
                == 500
            )
            assert app.stop() == 0, app.output()
        receiver.wait_for(lambda r: len(r.spans()) > 10, 10)
        yield ingest, receiver


def event_for(ingest: SentryIngest, route: str, exception_type: str) -> dict[str, Any]:
    (event,) = [
        e
        for e in ingest.events()
        if e["transaction"] == route and e["exception"]["values"][-1]["type"] == exception_type
    ]
    return event


def test_provider_timeout_carries_the_seeds_tags_user_and_contexts(run: Any) -> None:
    ingest, _ = run
    event = event_for(ingest, "/v1/chat/completions", "HTTPException")
    tags = event["tags"]
    assert tags["endpoint"] == "/v1/chat/completions"
    assert tags["method"] == "POST"
    assert tags["endpoint_type"] == "inference_chat"
    assert tags["is_revenue_critical"] == "true"
    assert tags["has_user"] == "true"
    assert tags["exception_type"] == "HTTPException"
    assert tags["error_category"] == "provider_error"  # from httpx.ReadTimeout behind the 500
    assert tags["is_timeout"] == "true"
    assert tags["http_status"] == "500"
    assert event["user"]["id"] == "42"
    assert "email" not in event["user"] and "ip_address" not in event["user"]  # send_default_pii off
    expected_hash = hashlib.sha256(f"Bearer {KEY}".encode()).hexdigest()[:16]
    assert event["user"]["data"] == {"api_key_id": "7", "api_key_hash": expected_hash}
    contexts = event["contexts"]
    assert contexts["request"]["endpoint_type"] == "inference_chat"
    assert contexts["request"]["method"] == "POST"
    assert contexts["response"]["status_code"] == 500
    assert contexts["exception_context"]["exception_type"] == "HTTPException"
    assert contexts["exception_context"]["error_category"] == "provider_error"
    assert event["request"]["headers"]["authorization"] == "[REDACTED]"
    (slow,) = [c for c in event["breadcrumbs"]["values"] if c.get("category") == "performance"]
    assert slow["level"] == "warning" and slow["data"]["endpoint"] == "/v1/chat/completions"


def test_handler_made_503_and_unhandled_database_error_are_classified(run: Any) -> None:
    ingest, _ = run
    down = event_for(ingest, "/v1/chat/completions", "ProviderError")
    assert down["tags"]["error_category"] == "provider_error"
    assert down["tags"]["http_status"] == "503"
    db = event_for(ingest, "/api/payments/webhook", "OperationalError")
    assert db["tags"]["error_category"] == "database_error"
    assert db["tags"]["endpoint_type"] == "payment"
    assert db["tags"]["is_revenue_critical"] == "true"
    assert db["tags"]["has_user"] == "false"
    images = event_for(ingest, "/v1/images/generations", "ValueError")
    assert images["tags"]["endpoint_type"] == "inference_images"
    assert images["tags"]["error_category"] == "server_error"


def test_the_same_facts_reach_the_otlp_backend(run: Any) -> None:
    _, receiver = run
    servers = [s for s in receiver.spans() if s["kind"] == 2]
    chat_spans = [s for s in servers if s["attributes"].get("http.route") == "/v1/chat/completions"]
    assert chat_spans
    for span in chat_spans:
        attrs = span["attributes"]
        assert attrs["otel_sentry.endpoint_type"] == "inference_chat"
        assert attrs["otel_sentry.is_revenue_critical"] is True
        assert attrs["user.id"] == "42"
        assert attrs["otel_sentry.user.api_key_id"] == "7"
        assert "user.email" not in attrs
    failed = [s for s in chat_spans if s["attributes"].get("error.type")]
    assert {s["attributes"]["otel_sentry.error_category"] for s in failed} == {"provider_error"}
    slow = [s for s in chat_spans if s["attributes"].get("otel_sentry.slow_request")]
    assert slow and any(e["name"] == "otel_sentry.slow_request" for e in slow[0]["events"])


def test_selected_headers_are_on_the_server_span_and_credentials_are_not(run: Any) -> None:
    _, receiver = run
    servers = [s for s in receiver.spans() if s["kind"] == 2]
    chat_spans = [s for s in servers if s["attributes"].get("http.route") == "/v1/chat/completions"]
    for span in chat_spans:
        attrs = span["attributes"]
        assert attrs["http.request.header.content_type"] == ["application/json"]
        assert attrs["http.request.header.user_agent"][0].startswith("python-httpx/")
        assert attrs["http.response.header.content_type"] == ["application/json"]
        assert not [k for k in attrs if "authorization" in k or "cookie" in k]


def test_the_standard_header_variables_hand_header_capture_to_the_instrumentation() -> None:
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "x-tenant,authorization",
        }
        with AppProcess("app", cwd=GATEWAY, env=env, ready_path="/health") as app:
            assert app.client.get("/v1/models", headers={"X-Tenant": "acme", **AUTH}).status_code == 200
            assert app.stop() == 0, app.output()
        assert receiver.wait_for(lambda r: any(s["kind"] == 2 for s in r.spans()), 10)
    (span,) = [
        s for s in receiver.spans() if s["kind"] == 2 and s["attributes"].get("http.route") == "/v1/models"
    ]
    attrs = span["attributes"]
    assert attrs["http.request.header.x_tenant"] == ["acme"]
    assert attrs["http.request.header.authorization"] == ["[REDACTED]"]
    assert "http.request.header.user_agent" not in attrs  # the user's list replaces ours


def test_the_raw_api_key_never_leaves_the_process(run: Any) -> None:
    ingest, receiver = run
    for blob in (ingest.raw_bytes(), receiver.raw_bytes()):
        assert KEY.encode() not in blob
    for event in ingest.events() + ingest.transactions():
        relay.assert_valid(event)
