"""Request bodies in error events: the same ``request.data`` and ``_meta`` as sentry-sdk's FastAPI
integration (the oracle, run on the same bodies in a subprocess), the app's stream untouched, and
sizes and truncation as ``max_request_body_size`` says."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from otel_sentry import _request_body, _request_secrets
from otel_sentry.testing import SentryIngest
from tests.support.apps import AppProcess
from tests.support.relay import assert_valid

APPS = Path(__file__).parent / "apps"
SCRUBBED = ("[Filtered]", "[REDACTED]")  # sentry-sdk's mark and ours for a value under a sensitive key
MULTIPART = (
    '--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nsee attached\r\n'
    '--XyZ\r\nContent-Disposition: form-data; name="upload"; filename="a.csv"\r\n'
    "Content-Type: text/csv\r\n\r\nid,amount\n1,20\n\r\n--XyZ--\r\n"
)
CASES: list[tuple[str, str]] = [
    ("application/json", json.dumps({"model": "gpt-4", "password": "hunter2hunter", "n": [1, 2]})),
    ("application/json", json.dumps([{"id": 1}, {"id": 2}])),
    ("application/json", json.dumps({"blob": "x" * 12_000})),  # over medium's 10,000 bytes
    ("application/vnd.api+json", json.dumps({"data": {"type": "orders"}})),
    ("application/x-www-form-urlencoded", "grant_type=password&username=ann&client_secret=s3cr3t-value"),
    ("multipart/form-data; boundary=XyZ", MULTIPART),
    ("text/plain", "just some text"),
    ("application/json", "{not json"),
    ("application/json", "{}"),
]


def _normalized(data: Any, meta: Any) -> tuple[Any, Any]:
    """Both SDKs' scrub marks as one; the scrubber's own _meta notes (sentry-sdk's "!config s") out:
    what is compared is what the body capture decided."""
    if isinstance(data, dict):
        data = {k: ("<scrubbed>" if v in SCRUBBED else v) for k, v in data.items()}
    if isinstance(meta, dict):
        meta = {k: v for k, v in meta.items() if v != {"": {"rem": [["!config", "s"]]}}} or None
    return data, meta


def _oracle() -> list[dict[str, Any]]:
    cases = [{"body": body, "headers": {"content-type": ctype}} for ctype, body in CASES]
    done = subprocess.run(
        [sys.executable, str(APPS / "body_oracle.py")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


def test_request_data_matches_sentry_sdk() -> None:
    expected = _oracle()
    with SentryIngest() as ingest:
        env = {"OTEL_TRACES_EXPORTER": "sentry", "SENTRY_DSN": ingest.dsn()}
        with AppProcess("reqsecrets_app", cwd=APPS, env=env, ready_path="/health") as app:
            for index, (ctype, body) in enumerate(CASES):
                response = app.client.post(
                    f"/body?case={index}",
                    content=body,
                    headers={"content-type": ctype, "Connection": "close"},
                )
                assert response.status_code == 500
            assert app.stop() == 0, app.output()
        assert ingest.wait_for(lambda i: len(i.events()) >= len(CASES), 30)
        events = {e["request"]["query_string"]: e for e in ingest.events()}
    for index, oracle in enumerate(expected):
        event = events[f"case={index}"]
        normalized = assert_valid(event)  # Relay accepts request.data and its _meta as sent
        assert (
            normalized["request"].get("data") == event["request"].get("data")
            or "data" not in event["request"]
        )
        ours = _normalized(
            event["request"].get("data"), (event.get("_meta") or {}).get("request", {}).get("data")
        )
        theirs = _normalized(oracle["data"], oracle["meta"])
        if isinstance(ours[0], dict) and isinstance(theirs[0], dict):
            # where our one scrubber replaces more (sentry-sdk sends `client_secret` as it is), fine
            scrubbed_only_here = {k for k, v in ours[0].items() if v == "<scrubbed>" != theirs[0].get(k)}
            theirs = (
                {k: ("<scrubbed>" if k in scrubbed_only_here else v) for k, v in theirs[0].items()},
                theirs[1],
            )
        assert ours == theirs, (CASES[index], ours, theirs)
    assert "hunter2hunter" not in json.dumps(list(events.values()))
    assert "s3cr3t-value" not in json.dumps(list(events.values()))


def _run(body: _request_body.RequestBody, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    teed = body.wrap(receive)

    async def read_all() -> list[dict[str, Any]]:
        return [await teed() for _ in messages]

    return asyncio.run(read_all())


def _body(size: str, ctype: str, length: Optional[int]) -> _request_body.RequestBody:
    scope: dict[str, Any] = {"method": "POST", "headers": [(b"content-type", ctype.encode())]}
    if length is not None:
        scope["headers"].append((b"content-length", str(length).encode()))

    async def receive() -> dict[str, Any]:
        return {}

    _request_body.start(scope, receive, size)
    found: _request_body.RequestBody = scope[_request_body.SCOPE_KEY]
    return found


@pytest.mark.parametrize(
    ("size", "length", "sent"),
    [
        ("small", 1000, True),
        ("small", 1001, False),
        ("medium", 10_000, True),
        ("medium", 10_001, False),
        ("always", 500_000, True),
    ],
)
def test_sizes_and_truncation_as_sentry_sdk(size: str, length: int, sent: bool) -> None:
    payload = b'{"k": "' + b"v" * (length - 9) + b'"}'
    assert len(payload) == length
    body = _body(size, "application/json", len(payload))
    chunks = [payload[i : i + 4096] for i in range(0, len(payload), 4096)]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    assert _run(body, messages) == messages  # the app reads exactly what it would have without us
    data, meta = body.event_data() or (None, None)
    if sent:
        assert meta is None and data == json.loads(payload)
    else:
        assert (data, meta) == ("", _request_body.OVER_SIZE)
        assert body.chunks == []  # nothing kept past the cap


def test_never_and_bodyless_requests_are_not_teed() -> None:
    scope: dict[str, Any] = {"method": "POST", "headers": [(b"content-length", b"10")]}

    async def receive() -> dict[str, Any]:
        return {}

    assert _request_body.start(scope, receive, "never") is receive
    assert _request_body.start({"method": "GET", "headers": []}, receive, "medium") is receive
    assert _request_body.SCOPE_KEY not in scope


def test_chunked_upload_without_length_sends_no_data_as_sentry_sdk() -> None:
    body = _body("medium", "application/json", None)
    _run(body, [{"type": "http.request", "body": b'{"a": 1}', "more_body": False}])
    assert body.event_data() is None


def test_unread_body_is_not_read_for_the_event() -> None:
    body = _body("medium", "application/json", 8)
    assert body.event_data() is None  # the app failed before reading: we do not read it either


def test_body_fields_become_request_secrets() -> None:
    token = _request_secrets._current.set(_request_secrets.RequestSecrets())
    try:
        body = _body("medium", "application/json", None)
        payload = json.dumps({"user": {"name": "ann", "new_password": "correct-horse-9"}}).encode()
        _run(body, [{"type": "http.request", "body": payload, "more_body": False}])
        secrets = _request_secrets.current()
        assert secrets is not None
        assert secrets.redact_text("pw was correct-horse-9") == "pw was [REDACTED]"
    finally:
        _request_secrets._current.reset(token)


def test_an_inference_requests_model_is_the_events_model_when_nothing_else_names_it() -> None:
    """The body's ``model`` on an inference route, never on another route, and no provider guessed
    from it."""
    with SentryIngest() as ingest:
        env = {"OTEL_TRACES_EXPORTER": "sentry", "SENTRY_DSN": ingest.dsn()}
        with AppProcess("reqsecrets_app", cwd=APPS, env=env, ready_path="/health") as app:
            for path in ("/v1/chat/completions", "/body"):
                response = app.client.post(
                    path,
                    json={"model": "openrouter/qwen-2.5-72b", "messages": []},
                    headers={"Connection": "close"},
                )
                assert response.status_code == 500
            assert app.stop() == 0, app.output()
        assert ingest.wait_for(lambda i: len(i.events()) >= 2, 30)
        tags = {e["transaction"]: e["tags"] for e in ingest.events()}
    assert tags["/v1/chat/completions"]["model"] == "openrouter/qwen-2.5-72b"
    assert "provider" not in tags["/v1/chat/completions"]
    assert "model" not in tags["/body"]
