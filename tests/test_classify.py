"""Error classification, table-driven: evidence from the failed span, the library, keywords, status."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import pytest

from otel_sentry._capture import exception_chain
from otel_sentry._classify import FailedSpan, classify, failed_span_from, provider_from_host


def chained(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as exc:
        return exc


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def sqlite_error() -> BaseException:
    try:
        sqlite3.connect(":memory:").execute("select * from missing")
    except sqlite3.Error as exc:
        return exc
    raise AssertionError("unreachable")


class PaymentDeclined(Exception):
    pass


class CacheMiss(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "status", "category", "timeout"),
    [
        (chained(RuntimeError("wrapped"), httpx.ConnectError("refused")), 500, "provider_error", False),
        (chained(RuntimeError("wrapped"), httpx.ReadTimeout("slow")), 500, "provider_error", True),
        (sqlite_error(), 500, "database_error", False),
        (raised(PaymentDeclined("card declined")), 500, "payment_error", False),
        (raised(CacheMiss("redis miss for key")), 500, "cache_error", False),
        (raised(PermissionError("login required")), 500, "auth_error", False),
        (raised(ValueError("bad size")), 500, "server_error", False),
        (raised(ValueError("bad size")), 422, "client_error", False),
        (raised(asyncio.TimeoutError()), 504, "server_error", True),
    ],
)
def test_categories(exc: BaseException, status: int, category: str, timeout: bool) -> None:
    facts = classify(exception_chain(exc), status_code=status)
    assert facts.error_category == category
    assert facts.is_timeout is timeout


def test_the_failed_span_wins_over_keywords_and_brings_provider_and_model() -> None:
    exc = raised(RuntimeError("payment of credits failed"))  # keywords would say payment_error
    span = failed_span_from(
        "chat gpt-4",
        {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4", "http.request.method": "POST"},
        True,
        "RuntimeError",
        "payment of credits failed",
    )
    facts = classify(exception_chain(exc), status_code=500, failed_spans=[span])
    assert (facts.error_category, facts.provider, facts.model) == ("provider_error", "openai", "gpt-4")


def test_an_explicit_category_wins() -> None:
    exc = raised(httpx.ConnectError("refused"))
    unrelated = FailedSpan("Other", "x", "database_error", None, None)
    facts = classify(exception_chain(exc), failed_spans=[unrelated], explicit_category="payment_error")
    assert facts.error_category == "payment_error"


def test_provider_from_an_httpx_error_and_from_hosts() -> None:
    request = httpx.Request("POST", "https://api.openrouter.ai/v1/chat")
    exc = chained(RuntimeError("wrapped"), httpx.ConnectError("refused", request=request))
    assert classify(exception_chain(exc), status_code=500).provider == "openrouter"
    assert provider_from_host("api.anthropic.com") == "anthropic"
    # placeholders name no provider: missing stays missing
    for placeholder in ("127.0.0.1", "localhost", "api.example.com", "llm.internal", "provider", "::1"):
        assert provider_from_host(placeholder) is None
    assert provider_from_host(None) is None


def test_database_span_of_the_cache_kind_is_a_cache_error() -> None:
    span = failed_span_from("GET", {"db.system": "redis"}, True, "ConnectionError", "boom")
    assert span.category == "cache_error"
    span = failed_span_from("SELECT", {"db.system.name": "postgresql"}, True, "OperationalError", "x")
    assert span.category == "database_error"
