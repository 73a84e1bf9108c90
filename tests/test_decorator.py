"""``@auto_capture_errors``: detection rules, argument extraction, every kind of function, typing."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import textwrap
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from otel_sentry import auto_capture_errors
from otel_sentry._decorator import DB_OPERATIONS, detect_context_type, infer_operation
from otel_sentry._runtime import Runtime
from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.capture_app import Run, background_run
from tests.support.runtime import events, sentry_runtime


@pytest.fixture
def runtime(sentry_ingest: SentryIngest) -> Iterator[Runtime]:
    with sentry_runtime(sentry_ingest) as rt:
        yield rt


# -- rules ----------------------------------------------------------------------------------------

DETECTION = [
    ("make_provider_request", "src.services.my_provider_client", "provider"),
    ("chat", "src.services.openrouter_client", "provider"),
    ("create_user", "src.db.users", "database"),
    ("get_key", "app.db.api_keys", "database"),
    ("process_payment", "src.services.billing", "payment"),
    ("handle_event", "src.routes.stripe_webhooks", "payment"),
    ("deduct_credits", "src.services.ledger", "payment"),
    ("login", "src.routes.users", "auth"),
    ("verify_auth_header", "src.security", "auth"),
    ("get_cached_models", "src.services.catalog", "cache"),
    ("set", "src.services.redis_store", "cache"),
    ("call_provider", "src.services.routing", "provider"),
    ("render", "src.views", "general"),
]


@pytest.mark.parametrize(("name", "module", "expected"), DETECTION)
def test_the_seeds_detection_rules(name: str, module: str, expected: str) -> None:
    assert detect_context_type(name, module) == expected


@pytest.mark.parametrize(
    ("name", "operation"),
    [
        ("create_user", "insert"),
        ("insert_rows", "insert"),
        ("get_user", "select"),
        ("fetch_models", "select"),
        ("list_keys", "select"),
        ("find_by_email", "select"),
        ("update_credits", "update"),
        ("delete_key", "delete"),
        ("remove_session", "delete"),
        ("getUserById", "select"),
        ("widget_budget", "unknown"),  # "get" inside a word is not "get"
    ],
)
def test_database_operation_is_inferred_from_the_function_name(name: str, operation: str) -> None:
    assert infer_operation(name, DB_OPERATIONS) == operation


# -- kinds of functions ------------------------------------------------------------------------------


class LedgerError(Exception):
    pass


@auto_capture_errors(context_type="database")
def create_user(email: str, table: str = "users", password: str = "") -> int:
    """Creates a user."""
    raise LedgerError(f"duplicate {email}")


@auto_capture_errors
async def make_provider_request(provider: str, model: str, messages: list[str]) -> str:
    await asyncio.sleep(0)
    raise TimeoutError(f"{provider} timed out")


@auto_capture_errors(context_type="cache")
def stream_keys(key: str) -> Iterator[int]:
    total = yield 1
    yield (total or 0) + 1
    raise LedgerError("cache went away")


@auto_capture_errors(context_type="provider")
async def stream_tokens(provider: str, model: str) -> AsyncIterator[str]:
    received = yield "hello"
    yield f"echo {received}"
    raise ConnectionResetError("stream reset")


class PaymentService:
    @auto_capture_errors
    def charge_card(self, user_id: str, amount: float) -> None:
        raise LedgerError("card declined")

    @classmethod
    @auto_capture_errors(context_type="auth")
    def verify_token(cls, user_id: str) -> bool:
        raise PermissionError("expired")

    @staticmethod
    @auto_capture_errors(reraise=False)
    def best_effort(n: int) -> Optional[int]:
        raise ValueError("swallowed")


def tags_of(event: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = event["tags"]
    return tags


def test_sync_function(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    with pytest.raises(LedgerError):
        create_user("a@example.com", "users", "hunter2-positional")
    (event,) = events(sentry_ingest, runtime, 1)
    assert {k: tags_of(event).get(k) for k in ("error_category", "operation", "table", "function")} == {
        "error_category": "database_error",
        "operation": "insert",
        "table": "users",
        "function": "create_user",
    }
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "auto_capture_errors", "handled": False}
    assert b"hunter2" not in sentry_ingest.raw_bytes()  # not from the arguments, not from frame data
    relay.assert_valid(event)


def test_async_function(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(make_provider_request("openrouter", "gpt-4", ["hi"]))
    (event,) = events(sentry_ingest, runtime, 1)
    assert {k: tags_of(event).get(k) for k in ("error_category", "provider", "model", "function")} == {
        "error_category": "provider_error",
        "provider": "openrouter",
        "model": "gpt-4",
        "function": "make_provider_request",
    }


def test_generator_keeps_send_semantics(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    gen = stream_keys("models")
    assert next(gen) == 1
    assert gen.send(41) == 42
    with pytest.raises(LedgerError):
        next(gen)
    (event,) = events(sentry_ingest, runtime, 1)
    assert tags_of(event)["error_category"] == "cache_error"
    assert event["contexts"]["cache"]["key"] == "models"


def test_async_generator_keeps_asend_semantics(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    async def consume() -> list[str]:
        agen = stream_tokens("openrouter", "gpt-4")
        out = [await agen.__anext__(), await agen.asend("ping")]
        with pytest.raises(ConnectionResetError):
            await agen.__anext__()
        return out

    assert asyncio.run(consume()) == ["hello", "echo ping"]
    (event,) = events(sentry_ingest, runtime, 1)
    assert tags_of(event)["provider"] == "openrouter"


def test_a_generator_closed_early_is_not_an_error(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    async def partial() -> None:
        agen = stream_tokens("openrouter", "gpt-4")
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(partial())
    gen = stream_keys("k")
    next(gen)
    gen.close()
    assert runtime.flush(5) and sentry_ingest.events() == []


def test_methods_classmethods_and_staticmethods(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    with pytest.raises(LedgerError):
        PaymentService().charge_card("user-1", 9.99)
    with pytest.raises(PermissionError):
        PaymentService.verify_token("user-1")
    assert PaymentService.best_effort(3) is None
    by_function = {tags_of(e)["function"]: e for e in events(sentry_ingest, runtime, 3)}
    charge = by_function["charge_card"]
    assert tags_of(charge)["error_category"] == "payment_error"
    assert tags_of(charge)["operation"] == "charge"
    assert tags_of(charge)["is_revenue_critical"] == "true"
    assert charge["contexts"]["payment"]["amount"] == 9.99
    assert tags_of(by_function["verify_token"])["error_category"] == "auth_error"
    swallowed = by_function["best_effort"]
    assert swallowed["exception"]["values"][-1]["mechanism"]["handled"] is True


def test_signatures_docstrings_and_type_hints_are_kept() -> None:
    assert (
        str(inspect.signature(create_user))
        == "(email: 'str', table: 'str' = 'users', password: 'str' = '') -> 'int'"
    )
    assert create_user.__doc__ == "Creates a user."
    assert typing.get_type_hints(create_user) == {"email": str, "table": str, "password": str, "return": int}
    assert inspect.iscoroutinefunction(make_provider_request)
    assert inspect.isgeneratorfunction(stream_keys)
    assert inspect.isasyncgenfunction(stream_tokens)


def test_sensitive_arguments_are_never_captured(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    @auto_capture_errors(capture_locals=True)
    def call_provider(provider: str, model: str, api_key: str, note: str, user_token: str) -> None:
        raise RuntimeError("upstream 500")

    with pytest.raises(RuntimeError):
        call_provider(
            "openrouter",
            "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",  # a secret passed where a model belongs
            api_key="plain-secret-value",
            note="Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
            user_token="tok_123456789",
        )
    (event,) = events(sentry_ingest, runtime, 1)
    raw = sentry_ingest.raw_bytes()
    for secret in (b"sk-proj-ABCDEFGH", b"plain-secret-value", b"eyJhbGciOiJIUzI1NiJ9", b"tok_123456789"):
        assert secret not in raw
    params = event["contexts"]["provider"]["parameters"]
    assert params["provider"] == "openrouter" and params["api_key"] == "[REDACTED]"
    relay.assert_valid(event)


def test_the_decorator_is_type_checked_with_paramspec(tmp_path: Path) -> None:
    """mypy sees the wrapped function's own signature (ParamSpec), not ``(*args, **kwargs)``."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            from otel_sentry import auto_capture_errors

            @auto_capture_errors
            def add(a: int, b: int = 1) -> int:
                return a + b

            @auto_capture_errors(context_type="database")
            async def load(table: str) -> list[str]:
                return [table]

            reveal_type(add)
            reveal_type(load)
            add("x")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(sample)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    out = result.stdout
    assert 'Revealed type is "def (a: int, b: int =) -> int"' in out, out
    assert 'Revealed type is "def (table: str) -> typing.Coroutine[Any, Any, list[str]]"' in out, out
    assert 'Argument 1 to "add" has incompatible type "str"; expected "int"' in out, out


# -- in a request (end to end) -----------------------------------------------------------------------


def test_decorated_failure_wrapped_by_the_route_is_one_event_with_the_decorators_tags() -> None:
    run: Run = background_run()
    (event,) = run.events_for("/decorated-wrapped")
    assert [v["type"] for v in event["exception"]["values"]] == ["LedgerError", "HTTPException"]
    assert event["tags"]["error_category"] == "payment_error"
    assert event["tags"]["operation"] == "charge"
    assert event["tags"]["function"] == "deduct_credits"
    assert b"sk-proj-abcdefghijklmnopqrstuvwx" not in run.raw
    relay.assert_valid(event)


def test_a_helper_before_an_http_503_keeps_its_own_event() -> None:
    run: Run = background_run()
    (event,) = run.events_for("/helper-then-503")
    assert [v["type"] for v in event["exception"]["values"]] == ["LedgerError"]
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "capture_payment_error", "handled": True}
    assert event["tags"]["operation"] == "credit_deduction"
    assert event["tags"]["http_status"] == "503"
    assert event["tags"]["endpoint"] == "/helper-then-503"
