"""The demo gateway itself, in-process, no telemetry: every route's success path and failure mode."""

from __future__ import annotations

import ast
import hashlib
import hmac
import importlib.util
import json
import sqlite3
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

APP_PATH = Path(__file__).resolve().parent.parent / "examples" / "gateway" / "app.py"
KEY = {"Authorization": "Bearer gw_live_demo_key_123"}
ADMIN_KEY = {"Authorization": "Bearer gw_live_admin_key_456"}
HELLO = [{"role": "user", "content": "Say hello"}]


def _load_app_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gateway_demo_app_under_test", APP_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gateway = _load_app_module()


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A fresh app (lifespan: db, provider sockets, http clients) per test."""
    monkeypatch.setenv("GATEWAY_DB_PATH", str(tmp_path / "gateway.db"))
    # raise_server_exceptions=False: unhandled errors come back as the 500 a real client sees
    with TestClient(gateway.app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def raising_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """Re-raises unhandled server exceptions, to check which exception escaped the route."""
    monkeypatch.setenv("GATEWAY_DB_PATH", str(tmp_path / "gateway.db"))
    with TestClient(gateway.app) as c:
        yield c


def signed(event: dict[str, Any], secret: str = "whsec_demo_secret") -> dict[str, Any]:
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"content": body, "headers": {"Stripe-Signature": f"t={ts},v1={sig}"}}


def test_app_imports_no_telemetry_but_the_seeds_helpers() -> None:
    """Automatic capture comes from opentelemetry-instrument alone; the one telemetry import is the
    seeds' helper module, for the explicit captures of their "coming soon" list."""
    imported = set()
    for node in ast.walk(ast.parse(APP_PATH.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert {"fastapi", "httpx", "sqlite3"} <= imported
    telemetry = {m for m in imported if m.split(".")[0] in ("otel_sentry", "sentry_sdk", "opentelemetry")}
    assert telemetry == {"otel_sentry.sentry_context"}


# --- inference -------------------------------------------------------------------------------------------


def test_chat_completion_success_deducts_credits(client: TestClient) -> None:
    before = client.get("/api/users/me", headers=KEY).json()["credits"]
    r = client.post("/v1/chat/completions", headers=KEY, json={"model": "gpt-4", "messages": HELLO})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert "gpt-4" in body["choices"][0]["message"]["content"]
    assert body["usage"]["total_tokens"] > 0
    assert client.get("/api/users/me", headers=KEY).json()["credits"] < before


def test_chat_completion_provider_timeout_is_500_chained(client: TestClient) -> None:
    t0 = time.monotonic()
    r = client.post(
        "/v1/chat/completions", headers=KEY, json={"model": "openrouter/timeout", "messages": HELLO}
    )
    assert r.status_code == 500
    assert "ReadTimeout" in r.json()["detail"]
    assert time.monotonic() - t0 < 2


def test_chat_completion_timeout_raises_httpexception_from_readtimeout(client: TestClient) -> None:
    """The seeds' pattern: HTTPException(500) whose __cause__ is the provider exception."""
    req = gateway.ChatRequest(model="openrouter/timeout", messages=HELLO)
    user = {"id": 42}

    class _Req:
        app = gateway.app

    with pytest.raises(gateway.HTTPException) as info:
        client.portal.call(gateway._complete, _Req(), req, user)  # type: ignore[union-attr]
    assert info.value.status_code == 500
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_chat_completion_provider_down_handled_503(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", headers=KEY, json={"model": "openrouter/down", "messages": HELLO})
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "provider_unavailable"
    assert 'gateway_provider_errors_total{provider="featherless"}' in client.get("/metrics").text


def test_chat_completion_client_errors(client: TestClient) -> None:
    ok = {"model": "gpt-4", "messages": HELLO}
    assert client.post("/v1/chat/completions", json=ok).status_code == 401
    assert (
        client.post("/v1/chat/completions", headers={"Authorization": "Bearer nope"}, json=ok).status_code
        == 401
    )
    unknown = {"model": "no-such-model", "messages": HELLO}
    assert client.post("/v1/chat/completions", headers=KEY, json=unknown).status_code == 404
    assert client.post("/v1/chat/completions", headers=KEY, json={"model": "gpt-4"}).status_code == 422


def test_messages_success_and_failures(client: TestClient) -> None:
    r = client.post(
        "/v1/messages",
        headers={"X-API-Key": "gw_live_demo_key_123"},
        json={"model": "claude-3-haiku", "messages": HELLO},
    )
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "message" and r.json()["content"][0]["type"] == "text"
    timeout = {"model": "openrouter/timeout", "messages": HELLO}
    assert client.post("/v1/messages", headers=KEY, json=timeout).status_code == 500
    down = {"model": "openrouter/down", "messages": HELLO}
    assert client.post("/v1/messages", headers=KEY, json=down).status_code == 503


def test_image_generation_success_and_unhandled_valueerror(client: TestClient) -> None:
    r = client.post("/v1/images/generations", headers=KEY, json={"prompt": "a cat", "size": "512x512"})
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["url"].endswith("512x512.png")
    r = client.post("/v1/images/generations", headers=KEY, json={"prompt": "a cat", "size": "4096x4096"})
    assert r.status_code == 500


def test_image_generation_beyond_the_credits_is_402(client: TestClient) -> None:
    before = client.get("/api/users/me", headers=KEY).json()["credits"]
    r = client.post(
        "/v1/images/generations", headers=KEY, json={"prompt": "p", "model": "dall-e-3-hd", "n": 4}
    )
    assert r.status_code == 402 and r.json()["detail"] == "Payment Required"
    assert client.get("/api/users/me", headers=KEY).json()["credits"] == before


def test_image_generation_bad_size_is_unhandled(raising_client: TestClient) -> None:
    with pytest.raises(ValueError, match="unsupported image size"):
        raising_client.post(
            "/v1/images/generations", headers=KEY, json={"prompt": "a cat", "size": "4096x4096"}
        )


# --- payments --------------------------------------------------------------------------------------------


def test_webhook_bad_signature_400(client: TestClient) -> None:
    body = json.dumps({"type": "charge.succeeded"}).encode()
    assert client.post("/api/payments/webhook", content=body).status_code == 400
    bad = {"Stripe-Signature": "t=1,v1=deadbeef"}
    assert client.post("/api/payments/webhook", content=body, headers=bad).status_code == 400
    wrong_secret = signed({"type": "charge.succeeded"}, secret="whsec_other")
    assert client.post("/api/payments/webhook", **wrong_secret).status_code == 400


def test_webhook_charge_succeeded_adds_credits(client: TestClient) -> None:
    before = client.get("/api/users/me", headers=KEY).json()["credits"]
    event = {"type": "charge.succeeded", "data": {"object": {"amount": 500, "metadata": {"user_id": "42"}}}}
    r = client.post("/api/payments/webhook", **signed(event))
    assert r.status_code == 200, r.text
    assert client.get("/api/users/me", headers=KEY).json()["credits"] == pytest.approx(before + 5)


def test_webhook_charge_failed_402_from_check_constraint(client: TestClient) -> None:
    event = {
        "type": "charge.failed",
        "data": {"object": {"amount": 10_000_000, "metadata": {"user_id": "42"}}},
    }
    r = client.post("/api/payments/webhook", **signed(event))
    assert r.status_code == 402
    assert r.json()["detail"] == "Payment Required"


def test_webhook_invoice_paid_unhandled_sqlite_error(client: TestClient) -> None:
    r = client.post("/api/payments/webhook", **signed({"type": "invoice.paid"}))
    assert r.status_code == 500


def test_webhook_invoice_paid_raises_operational_error(raising_client: TestClient) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        raising_client.post("/api/payments/webhook", **signed({"type": "invoice.paid"}))


def test_webhook_receipt_is_sent_in_the_background(client: TestClient) -> None:
    event = {"type": "charge.succeeded", "data": {"object": {"amount": 700, "metadata": {"user_id": "42"}}}}
    assert client.post("/api/payments/webhook", **signed(event)).status_code == 200
    assert gateway.app.state.receipts == [{"user_id": 42, "amount": 7.0, "email": "dev@example.com"}]


def test_webhook_receipt_bounce_raises_after_the_response(raising_client: TestClient) -> None:
    obj = {"amount": 700, "metadata": {"user_id": "42"}, "receipt_email": "bounce@example.com"}
    event = {"type": "charge.succeeded", "data": {"object": obj}}
    with pytest.raises(gateway.ReceiptDeliveryError, match="550"):
        raising_client.post("/api/payments/webhook", **signed(event))
    assert gateway.app.state.receipts == []


# --- auth, account, admin -------------------------------------------------------------------------------


def test_login(client: TestClient) -> None:
    r = client.post("/auth/login", json={"email": "dev@example.com", "password": "demo-password"})
    assert r.status_code == 200
    assert r.json() == {"user_id": 42, "api_key": "gw_live_demo_key_123"}
    bad = client.post("/auth/login", json={"email": "dev@example.com", "password": "wrong"})
    assert bad.status_code == 401


def test_login_locks_after_three_failures_in_a_row(client: TestClient) -> None:
    attempt = {"email": "admin@example.com", "password": "guess"}
    statuses = [client.post("/auth/login", json=attempt).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    good = {"email": "admin@example.com", "password": "admin-password"}
    assert client.post("/auth/login", json=good).status_code == 429  # locked
    # another e-mail is not affected, and a success resets its count
    dev = {"email": "dev@example.com", "password": "nope"}
    assert [client.post("/auth/login", json=dev).status_code for _ in range(2)] == [401, 401]
    assert client.post("/auth/login", json={**dev, "password": "demo-password"}).status_code == 200
    assert client.post("/auth/login", json=dev).status_code == 401


def test_users_me_and_request_state(client: TestClient) -> None:
    assert client.get("/api/users/me").status_code == 401
    r = client.get("/api/users/me", headers=KEY)
    assert r.status_code == 200
    assert r.json()["id"] == 42 and r.json()["email"] == "dev@example.com" and r.json()["api_key_id"] == 7


def test_auth_dependency_sets_seed_state_names(client: TestClient) -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"authorization", KEY["Authorization"].encode())],
    }
    request = Request(scope)
    user = gateway.authenticate(request)
    assert (request.state.user_id, request.state.email, request.state.api_key_id) == (
        42,
        "dev@example.com",
        7,
    )
    assert user["is_admin"] is False


def test_keys(client: TestClient) -> None:
    assert client.get("/api/keys").status_code == 401
    keys = client.get("/api/keys", headers=KEY).json()["keys"]
    assert [k["id"] for k in keys] == [7]
    assert "gw_live_demo_key_123" not in json.dumps(keys)


def test_admin_stats(client: TestClient) -> None:
    assert client.get("/api/admin/stats", headers=KEY).status_code == 403
    r = client.get("/api/admin/stats", headers=ADMIN_KEY)
    assert r.status_code == 200
    assert r.json()["users"] == 2


# --- catalog, health, validation -------------------------------------------------------------------------


def test_models_catalog(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert "gpt-4" in ids and "openrouter/timeout" in ids
    assert client.get("/v1/models/gpt-4").json()["owned_by"] == "openai"
    assert client.get("/v1/models/openrouter/down").status_code == 200
    assert client.get("/v1/models/no-such-model").status_code == 404


def test_providers_health_metrics(client: TestClient) -> None:
    names = [p["name"] for p in client.get("/api/providers").json()["providers"]]
    assert names == ["openai", "anthropic", "openrouter", "featherless"]
    assert client.get("/health").json() == {"status": "healthy", "database": "ok"}
    m = client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    assert "gateway_tokens_total" in m.text


def test_chat_validate(client: TestClient) -> None:
    r = client.post("/v1/chat/validate", json={"model": "gpt-4", "messages": HELLO})
    assert r.status_code == 200 and r.json()["valid"] is True
    assert client.post("/v1/chat/validate", json={"model": "gpt-4", "messages": []}).status_code == 422
    assert client.post("/v1/chat/validate", json={"messages": "hi"}).status_code == 422
    bad_temp = {"model": "gpt-4", "messages": HELLO, "temperature": 9}
    assert client.post("/v1/chat/validate", json=bad_temp).status_code == 422


# --- the scripted traffic of `otel-sentry demo` matches what the app really answers ---------------------


def test_demo_script_statuses_match_the_app(client: TestClient) -> None:
    from otel_sentry import _demo

    script = _demo.build_script(len(_demo.FAILURES) + len(_demo.SUCCESSES))
    assert all(call in script for call in (*_demo.FAILURES, *_demo.SUCCESSES))
    got = [(call.label, _demo._send(client, "http://testserver", call)) for call in script]
    assert got == [(call.label, str(call.expect)) for call in script]


def test_demo_script_is_bounded_and_deterministic() -> None:
    from otel_sentry import _demo

    assert _demo.build_script(60) == _demo.build_script(60)
    assert len(_demo.build_script(60)) == 60
    assert len(_demo.build_script(1)) == len(_demo.FAILURES)  # every failure mode at least once
    assert sum(c.expect == 200 for c in _demo.build_script(60)) > 40
