"""Exceptions that broke capture on real apps: deep recursion, a __str__ that raises or is slow,
library frames under the working directory, an unrelated exception in sys.exc_info(); and what the
event says (category from evidence, provider/model from the exception, the parent span)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_sentry import _capture, _logging
from otel_sentry._classify import classify
from otel_sentry._frames import FrameOptions, _library_frame, exception_values
from otel_sentry._runtime import Runtime
from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.runtime import events, sentry_runtime


@pytest.fixture
def runtime(sentry_ingest: SentryIngest) -> Iterator[Runtime]:
    with sentry_runtime(sentry_ingest) as rt:
        yield rt


def _recurse(n: int) -> None:
    if n == 0:
        raise RecursionError("deep")
    _recurse(n - 1)


def test_a_traceback_over_sentry_sdks_frame_limit_keeps_both_ends() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        try:
            _recurse(3000)
        except RecursionError as exc:
            values = exception_values(
                exc, exc.__traceback__, handled=False, mechanism_type="t", options=FrameOptions()
            )
    finally:
        sys.setrecursionlimit(limit)
    frames = values[-1]["stacktrace"]["frames"]
    assert isinstance(frames, list) and len(frames) == 250
    assert frames[0]["function"] == "test_a_traceback_over_sentry_sdks_frame_limit_keeps_both_ends"
    assert frames[-1]["function"] == "_recurse" and frames[-1]["context_line"].strip().startswith("raise")
    assert values[-1]["mechanism"]["data"] == {"frames_omitted": 3002 - 250}
    relay.assert_valid({"exception": {"values": values}, "platform": "python"})


class Unprintable(Exception):
    calls = 0

    def __str__(self) -> str:
        type(self).calls += 1
        raise RuntimeError("no str for you")


class Slow(Exception):
    calls = 0

    def __str__(self) -> str:
        type(self).calls += 1
        time.sleep(0.05)
        return "slow message"


@pytest.mark.parametrize("cls", [Unprintable, Slow])
def test_a_user_str_runs_at_most_once_per_capture_and_never_breaks_it(
    cls: type, runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    tracer = TracerProvider().get_tracer("t")
    cls.calls = 0  # type: ignore[attr-defined]
    with tracer.start_as_current_span("request"):
        try:
            raise cls("x")
        except Exception as exc:
            assert _capture.capture(
                runtime, exc, exc.__traceback__, handled=False, mechanism="t", record_on_span=True
            )
    (event,) = events(sentry_ingest, runtime, 1)
    assert cls.calls <= 1  # type: ignore[attr-defined]
    value = event["exception"]["values"][-1]
    assert value["type"] == cls.__name__
    assert value["value"] == (
        "slow message" if cls is Slow else f"<{__name__}.Unprintable object: str raised RuntimeError>"
    )
    relay.assert_valid(event)


def test_frames_of_installed_packages_and_compiled_modules_are_never_in_app() -> None:
    assert _library_frame({"abs_path": "uvloop/loop.pyx", "module": "uvloop.loop"}, ())
    assert _library_frame({"abs_path": "/app/.venv/lib/python3.11/site-packages/x/y.py", "module": "x.y"}, ())
    assert not _library_frame({"abs_path": "/app/service/routes.py", "module": "service.routes"}, ())
    assert not _library_frame(
        {"abs_path": "/app/.venv/lib/site-packages/mine/a.py", "module": "mine.a"}, ("mine",)
    )


def test_a_log_record_carries_its_own_exception_not_an_unrelated_one(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    log = logging.getLogger("tests.edges")
    log.propagate = False
    _logging.install(logging.ERROR, None)
    try:
        try:
            raise KeyError("unrelated lookup")
        except KeyError:
            log.error("quota nearly exhausted")  # says nothing about the KeyError
            log.error("lookup failed: %s", "'unrelated lookup'")  # names it: the swallowed pattern
    finally:
        _logging.uninstall()
    first, second = events(sentry_ingest, runtime, 2)
    assert "exception" not in first and first["logentry"]["formatted"] == "quota nearly exhausted"
    assert second["exception"]["values"][-1]["type"] == "KeyError"


def test_error_events_carry_the_parent_span(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("outer") as outer, tracer.start_as_current_span("inner"):
        try:
            raise ValueError("in a child span")
        except ValueError as exc:
            _capture.capture(runtime, exc, exc.__traceback__, handled=False, mechanism="t")
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["contexts"]["trace"]["parent_span_id"] == f"{outer.get_span_context().span_id:016x}"
    relay.assert_valid(event)


class LLMError(Exception):
    def __init__(self, message: str, llm_provider: str, model: str) -> None:
        super().__init__(message)
        self.llm_provider, self.model = llm_provider, model


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("exc", "status", "hint", "expected"),
    [
        (ModuleNotFoundError("No module named 'tiktoken'"), 500, "provider_error", "configuration_error"),
        (json.JSONDecodeError("Expecting value", "", 0), 500, "provider_error", "client_error"),
        (PermissionError("nope"), 403, "provider_error", "auth_error"),
        (
            RuntimeError("upstream said no"),
            500,
            "provider_error",
            "provider_error",
        ),  # the hint, then keywords
        (RuntimeError("boom"), 500, None, "server_error"),
        (RuntimeError("token expired"), 500, None, "auth_error"),  # the seeds' keywords
    ],
)
def test_category_from_evidence_in_order(exc: BaseException, status: int, hint: Any, expected: str) -> None:
    assert classify([_raised(exc)], status_code=status, hint=hint).error_category == expected


def test_provider_and_model_from_the_exception_itself() -> None:
    facts = classify([_raised(LLMError("rate limited", "anthropic", "claude-x"))], status_code=500)
    assert (facts.provider, facts.model) == ("anthropic", "claude-x")
    assert classify([_raised(RuntimeError("x"))], status_code=500).provider is None  # missing stays missing


def test_sqlalchemy_errors_are_database_errors() -> None:
    sqlalchemy_exc = pytest.importorskip("sqlalchemy.exc")
    error = sqlalchemy_exc.OperationalError("SELECT 1", {}, Exception("no such table"))
    assert (
        classify([_raised(error)], status_code=500, hint="provider_error").error_category == "database_error"
    )


@pytest.mark.parametrize("cls", [Unprintable, Slow])
def test_through_the_capture_helpers_too(cls: type, runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    from otel_sentry import capture_error

    cls.calls = 0  # type: ignore[attr-defined]
    try:
        raise cls("x")
    except Exception as exc:
        assert capture_error(exc, "provider", {"model": "m"})
    (event,) = events(sentry_ingest, runtime, 1)
    assert cls.calls <= 1  # type: ignore[attr-defined]
    relay.assert_valid(event)
