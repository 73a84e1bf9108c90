"""The seeds' seven capture helpers: their tags, contexts, span records, and what bad input does.

In process, delivering over real HTTP to a loopback ingest; every event is checked by Relay.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_sentry
from otel_sentry import _sanitize, sentry_context
from otel_sentry._runtime import Runtime
from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.apps import clean_env
from tests.support.runtime import events, sentry_runtime

APPS = Path(__file__).parent / "apps"


@pytest.fixture
def runtime(sentry_ingest: SentryIngest) -> Iterator[Runtime]:
    with sentry_runtime(sentry_ingest) as rt:
        yield rt


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


# helper call -> (tags it must produce, context name, context subset)
CASES: dict[str, tuple[Callable[[BaseException], Any], dict[str, str], str, dict[str, Any]]] = {
    "capture_error": (
        lambda e: otel_sentry.capture_error(
            e, context_type="provider", context_data={"provider": "openrouter"}, tags={"team": "infra"}
        ),
        {"error_category": "provider_error", "team": "infra"},
        "provider",
        {"provider": "openrouter"},
    ),
    "capture_provider_error": (
        lambda e: otel_sentry.capture_provider_error(
            e, provider="openrouter", model="gpt-4", request_id="req-123", endpoint="/v1/chat"
        ),
        {"error_category": "provider_error", "provider": "openrouter", "model": "gpt-4"},
        "provider",
        {"provider": "openrouter", "model": "gpt-4", "request_id": "req-123", "endpoint": "/v1/chat"},
    ),
    "capture_database_error": (
        lambda e: otel_sentry.capture_database_error(
            e, operation="insert", table="users", details={"rows": 2}
        ),
        {"error_category": "database_error", "operation": "insert", "table": "users"},
        "database",
        {"operation": "insert", "table": "users", "rows": 2},
    ),
    "capture_payment_error": (
        lambda e: otel_sentry.capture_payment_error(
            e, operation="credit_deduction", user_id="user-123", amount=10.5, details={"tokens": 900}
        ),
        {
            "error_category": "payment_error",
            "operation": "credit_deduction",
            "provider": "stripe",
            "is_revenue_critical": "true",
        },
        "payment",
        {"operation": "credit_deduction", "provider": "stripe", "user_id": "user-123", "amount": 10.5},
    ),
    "capture_auth_error": (
        lambda e: otel_sentry.capture_auth_error(e, operation="verify_key", user_id="user-123"),
        {"error_category": "auth_error", "operation": "verify_key"},
        "authentication",
        {"operation": "verify_key", "user_id": "user-123"},
    ),
    "capture_cache_error": (
        lambda e: otel_sentry.capture_cache_error(e, operation="get", key="models:catalog"),
        {"error_category": "cache_error", "operation": "get", "cache_type": "redis"},
        "cache",
        {"operation": "get", "cache_type": "redis", "key": "models:catalog"},
    ),
    "capture_model_health_error": (
        lambda e: otel_sentry.capture_model_health_error(
            e,
            model_id="gpt-4",
            provider="openai",
            gateway="openrouter",
            status="unhealthy",
            response_time_ms=500.0,
        ),
        {
            "error_category": "model_health_error",
            "provider": "openai",
            "gateway": "openrouter",
            "model_id": "gpt-4",
            "model": "gpt-4",
            "operation": "health_check",
        },
        "model_health",
        {"model_id": "gpt-4", "status": "unhealthy", "response_time_ms": 500.0},
    ),
}


@pytest.mark.parametrize("helper", sorted(CASES))
def test_each_helper_sends_the_seeds_tags_and_context(
    helper: str, runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    call, tags, context_name, context = CASES[helper]
    event_id = call(raised(ConnectionError("provider refused the connection")))
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["event_id"] == event_id
    assert {k: event["tags"].get(k) for k in tags} == tags
    assert context.items() <= event["contexts"][context_name].items()
    value = event["exception"]["values"][-1]
    assert value["type"] == "ConnectionError"
    assert value["mechanism"] == {"type": helper, "handled": True}
    assert value["stacktrace"]["frames"][-1]["function"] == "raised"
    assert event["level"] == "error"
    relay.assert_valid(event)


def test_the_seeds_module_names_port_with_one_import_line() -> None:
    from otel_sentry.auto_sentry import auto_capture_errors

    assert auto_capture_errors is otel_sentry.auto_capture_errors
    assert sorted(sentry_context.__all__) == sorted(CASES)
    for name in CASES:
        assert getattr(sentry_context, name) is getattr(otel_sentry, name)


def test_seeds_defaults_are_kept() -> None:
    import inspect

    assert inspect.signature(otel_sentry.capture_payment_error).parameters["provider"].default == "stripe"
    assert inspect.signature(otel_sentry.capture_cache_error).parameters["cache_type"].default == "redis"
    assert (
        inspect.signature(otel_sentry.capture_model_health_error).parameters["operation"].default
        == "health_check"
    )
    assert inspect.signature(otel_sentry.capture_error).parameters["level"].default == "error"


def test_level_is_honoured_and_a_bad_level_warns_once(
    runtime: Runtime, sentry_ingest: SentryIngest, caplog: pytest.LogCaptureFixture
) -> None:
    otel_sentry.capture_error(raised(ValueError("a")), level="warning")
    otel_sentry.capture_error(raised(ValueError("b")), level="warn")
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        otel_sentry.capture_error(raised(ValueError("c")), level="loud")
        otel_sentry.capture_error(raised(ValueError("d")), level="louder")
    levels = {e["exception"]["values"][-1]["value"]: e["level"] for e in events(sentry_ingest, runtime, 4)}
    assert levels == {"a": "warning", "b": "warning", "c": "error", "d": "error"}
    assert len([r for r in caplog.records if "level=" in r.getMessage()]) <= 1


def test_the_exception_is_recorded_on_the_current_span_with_the_category(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("charge") as span:
        event_id = otel_sentry.capture_payment_error(
            raised(RuntimeError("card declined")), operation="charge"
        )
    (finished,) = exporter.get_finished_spans()
    (recorded,) = [e for e in finished.events if e.name == "exception"]
    assert recorded.attributes is not None
    assert recorded.attributes["exception.type"] == "RuntimeError"
    assert recorded.attributes["exception.escaped"] is False
    assert recorded.attributes["otel_sentry.error_category"] == "payment_error"
    assert recorded.attributes["otel_sentry.operation"] == "charge"
    assert recorded.attributes["otel_sentry.event_id"] == event_id
    assert finished.status.is_unset  # handled: the span did not fail
    (event,) = events(sentry_ingest, runtime, 1)
    context = span.get_span_context()
    assert event["contexts"]["trace"]["trace_id"] == f"{context.trace_id:032x}"
    assert event["contexts"]["trace"]["span_id"] == f"{context.span_id:016x}"


def test_a_second_capture_of_the_same_exception_is_not_a_second_event(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    exc = raised(TimeoutError("slow"))
    assert otel_sentry.capture_provider_error(exc, provider="portkey")
    assert otel_sentry.capture_error(exc) is None
    assert len(events(sentry_ingest, runtime, 1)) == 1


def test_without_configuration_helpers_do_nothing_and_return_none() -> None:
    assert otel_sentry.capture_error(raised(ValueError("unconfigured"))) is None


def test_a_script_without_a_span_gets_a_short_span_and_a_real_trace(tmp_path: Path) -> None:
    script = APPS / "capture_script.py"
    with SentryIngest() as ingest:
        result = subprocess.run(
            [sys.executable, str(script), ingest.dsn()],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert ingest.wait_for(lambda i: len(i.events()) == 1 and len(i.transactions()) == 1, 10)
        (event,), (transaction,) = ingest.events(), ingest.transactions()
    assert event["tags"]["error_category"] == "database_error"
    assert event["contexts"]["trace"]["trace_id"] == transaction["contexts"]["trace"]["trace_id"]
    assert transaction["transaction"] == "otel_sentry.capture_database_error"
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    relay.assert_valid(event)
    relay.assert_valid(transaction)


# -- never raises, never bloats -----------------------------------------------------------------


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class ReprHangs:
    release = threading.Event()

    def __repr__(self) -> str:
        self.release.wait(30)  # stands for a lazy ORM load on a dead connection
        return "finally"


class StrHangsError(Exception):
    def __str__(self) -> str:
        ReprHangs.release.wait(30)
        return "finally"


@pytest.fixture
def release_hanging_reprs() -> Iterator[None]:
    ReprHangs.release.clear()
    yield
    ReprHangs.release.set()  # let abandoned helper threads finish


def recursive() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    loop["list"] = [loop, [loop]]
    return loop


BAD_INPUTS: dict[str, Callable[[], Any]] = {
    "string instead of exception": lambda: otel_sentry.capture_error("just a string"),  # type: ignore[arg-type]
    "None instead of exception": lambda: otel_sentry.capture_payment_error(None, operation="x"),  # type: ignore[arg-type]
    "dict instead of exception": lambda: otel_sentry.capture_error({"error": "dict"}),  # type: ignore[arg-type]
    "recursive details": lambda: otel_sentry.capture_database_error(
        raised(ValueError("r")), operation="select", table="t", details=recursive()
    ),
    "huge details": lambda: otel_sentry.capture_database_error(
        raised(ValueError("h")),
        operation="select",
        table="t",
        details={f"k{i}": "x" * 100_000 for i in range(200)},
    ),
    "deep details": lambda: otel_sentry.capture_cache_error(
        raised(ValueError("d")), operation="get", details=_deep(500)
    ),
    "huge message": lambda: otel_sentry.capture_error(raised(ValueError("m" * 5_000_000))),
    "repr raises": lambda: otel_sentry.capture_error(
        raised(ValueError("rr")), context_type="x", context_data={"obj": ReprRaises()}
    ),
    "non-UTF-8 bytes": lambda: otel_sentry.capture_cache_error(
        raised(ValueError(b"\xff\xfe\x00bytes")),
        operation="get",
        key=b"\xc3\x28\xa0\xa1",
        details={"b": b"\x80"},
    ),
    "lone surrogates": lambda: otel_sentry.capture_provider_error(
        raised(ValueError("bad \ud800 text")),
        provider="open\udcffrouter",
        model="\ud83d",
        extra_context={"\udc80key": "\ud800"},
    ),
    "hostile tags": lambda: otel_sentry.capture_error(
        raised(ValueError("t")), tags={"bad key!\n": "line\nbreak", "k" * 500: "v" * 500, "x": None, 3: 4}
    ),
    "nan and huge ints": lambda: otel_sentry.capture_payment_error(
        raised(ValueError("n")),
        operation="x",
        amount=float("nan"),
        details={"big": 10**5000, "inf": float("inf")},
    ),
}


def _deep(n: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    top = node
    for _ in range(n):
        node["next"] = {}
        node = node["next"]
    return top


def _item_sizes(ingest: SentryIngest) -> list[int]:
    return [len(json.dumps(e, ensure_ascii=False).encode()) for e in ingest.events()]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_a_valid_capped_event_and_no_exception(
    case: str, runtime: Runtime, sentry_ingest: SentryIngest, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        event_id = BAD_INPUTS[case]()
    assert isinstance(event_id, str)
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["event_id"] == event_id
    assert max(_item_sizes(sentry_ingest)) <= _sanitize.MAX_EVENT_BYTES
    for value in event["exception"]["values"]:
        assert len(value["value"]) <= _sanitize.MAX_MESSAGE
    assert all(len(v) <= 200 and "\n" not in v for v in event["tags"].values())
    assert len([r for r in caplog.records if r.name == "otel_sentry"]) <= 1
    relay.assert_valid(event)


def test_a_repr_that_hangs_costs_a_bounded_wait(
    runtime: Runtime, sentry_ingest: SentryIngest, release_hanging_reprs: None
) -> None:
    hanging = ReprHangs()  # also a local of the frame the exception is raised in

    def fail() -> None:
        local = hanging  # noqa: F841 - sentry-sdk would repr() it as a frame variable
        raise ValueError("with a hanging local")

    started = time.monotonic()
    try:
        fail()
    except ValueError as exc:
        event_id = otel_sentry.capture_error(exc, context_type="x", context_data={"obj": hanging})
    elapsed = time.monotonic() - started
    assert elapsed < _sanitize.CAPTURE_BUDGET + 0.5, elapsed
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["event_id"] == event_id
    assert "did not return" in json.dumps(event) or "skipped" in json.dumps(event)
    relay.assert_valid(event)


def test_an_exception_whose_str_hangs_is_sent_without_its_message(
    runtime: Runtime, sentry_ingest: SentryIngest, release_hanging_reprs: None
) -> None:
    started = time.monotonic()
    event_id = otel_sentry.capture_error(raised(StrHangsError()))
    assert time.monotonic() - started < _sanitize.CAPTURE_BUDGET + 0.5
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["event_id"] == event_id
    assert event["exception"]["values"][-1]["type"] == "StrHangsError"
    relay.assert_valid(event)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    details=json_like, tags=st.dictionaries(st.text(max_size=20), json_like, max_size=4), message=st.text()
)
def test_any_details_and_tags_make_a_valid_event(
    details: Any, tags: Any, message: str, runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    sentry_ingest.clear()
    event_id = otel_sentry.capture_error(
        raised(ValueError(message)), context_type="fuzz", context_data=details, tags=tags
    )
    assert event_id
    (event,) = events(sentry_ingest, runtime, 1)
    relay.assert_valid(event)


def test_an_event_over_one_mib_is_shrunk_to_fit(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    def dive(depth: int) -> None:
        payload = f"{depth}" * 200_000  # a 200 KB local in each frame: ~2 MB of frame data
        if depth == 0:
            raise RecursionError(f"bottom reached with {len(payload)} bytes per frame")
        dive(depth - 1)

    try:
        dive(10)
    except RecursionError as exc:
        assert otel_sentry.capture_error(exc)
    (event,) = events(sentry_ingest, runtime, 1)
    assert max(_item_sizes(sentry_ingest)) <= _sanitize.MAX_EVENT_BYTES
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [f["function"] for f in frames].count("dive") == 11  # the stack is kept, its data shrunk
    relay.assert_valid(event)


# -- hostile input: never raises, never scans what it does not keep (issue 14) ------------------------
class _StrRaises:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__


class _ReadRaises(Exception):
    def __getattribute__(self, name: str) -> Any:
        if name in ("__class__", "__traceback__", "args", "__cause__", "__context__"):
            return object.__getattribute__(self, name)
        raise RuntimeError(name)


def test_hostile_arguments_still_produce_one_event_each(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    big = "word " * (2 * 1024 * 1024)  # 10 MB message
    ids = [
        otel_sentry.capture_error(raised(ValueError("x")), context_type=_StrRaises()),  # type: ignore[arg-type]
        otel_sentry.capture_error(raised(_ReadRaises("x"))),
        otel_sentry.capture_error(raised(ValueError(big))),
        otel_sentry.capture_error(raised(ValueError(bytes(range(128, 256)) * 40_000))),
    ]
    assert all(ids), ids
    received = {e["event_id"]: e for e in events(sentry_ingest, runtime, 4)}
    values = [received[i]["exception"]["values"][-1] for i in ids]  # type: ignore[index]
    assert [v["type"] for v in values] == ["ValueError", "_ReadRaises", "ValueError", "ValueError"]
    assert "attributes raise" in values[1]["value"]
    assert 0 < len(values[2]["value"]) <= _sanitize.MAX_MESSAGE and values[2]["value"].startswith("word word")
    assert 0 < len(values[3]["value"]) <= _sanitize.MAX_MESSAGE
    for event in received.values():
        relay.assert_valid(event)


def test_a_huge_local_is_kept_cut_between_words(runtime: Runtime, sentry_ingest: SentryIngest) -> None:
    def fails(huge: str) -> None:
        raise ValueError("x")

    try:
        fails("word " * 2_000_000 + "sk-proj-Zq8WmX2vLr5TnB7yKc4HdJ9p")
    except ValueError as exc:
        event_id = otel_sentry.capture_error(exc)
    (event,) = [e for e in events(sentry_ingest, runtime, 1) if e["event_id"] == event_id]
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    (kept,) = [f["vars"]["huge"] for f in frames if "huge" in (f.get("vars") or {})]
    assert kept.startswith("'word word") and len(kept) <= _sanitize.MAX_STRING + 8
    assert "Zq8WmX2v" not in json.dumps(event)
