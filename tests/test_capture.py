"""One exception, one event: deduplication of captures of the same raise, and what is not a duplicate."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Optional

import pytest

from otel_sentry import _capture
from otel_sentry._inbox import Inbox
from otel_sentry._runtime import Runtime
from otel_sentry._settings import load_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(load_settings({}, inbox_dir=tmp_path / "inbox"))
    yield rt
    rt.shutdown()


def produced(runtime: Runtime) -> int:
    return runtime.counters["error.produced"]


def raise_and_catch(exc: BaseException) -> tuple[BaseException, Optional[TracebackType]]:
    try:
        raise exc
    except BaseException:
        _, value, tb = sys.exc_info()
        assert value is not None
        return value, tb


def test_the_same_raise_seen_at_two_depths_is_one_event(runtime: Runtime) -> None:
    def inner() -> None:
        raise ValueError("inner raise")

    def outer() -> None:
        try:
            inner()
        except ValueError as exc:
            _capture.capture(runtime, exc, exc.__traceback__, handled=True, mechanism="test")
            raise

    with pytest.raises(ValueError) as info:
        outer()
    # Seen again further out (more frames prepended to the same traceback).
    assert _capture.capture(runtime, info.value, info.tb, handled=False, mechanism="test") is None
    assert produced(runtime) == 1


def test_an_exception_chained_to_a_captured_one_is_not_a_second_event(runtime: Runtime) -> None:
    cause, tb = raise_and_catch(ConnectionError("provider refused"))
    assert _capture.capture(runtime, cause, tb, handled=True, mechanism="test")
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as wrapper:
        assert _capture.capture(runtime, wrapper, wrapper.__traceback__, handled=False, mechanism="t") is None
    assert produced(runtime) == 1


def test_a_reused_exception_instance_raised_again_is_a_new_event(runtime: Runtime) -> None:
    shared = KeyError("reused")  # built-in: cannot be weakly referenced
    for _ in range(3):
        value, tb = raise_and_catch(shared)
        assert _capture.capture(runtime, value, tb, handled=False, mechanism="test")
    assert produced(runtime) == 3


def test_captures_outside_a_request_reach_the_inbox(runtime: Runtime, tmp_path: Path) -> None:
    value, tb = raise_and_catch(LookupError("nothing here"))
    event_id = _capture.capture(runtime, value, tb, handled=True, mechanism="test")
    assert runtime.flush(5)
    (event,) = Inbox(tmp_path / "inbox").events()
    assert event["event_id"] == event_id
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "test", "handled": True}
    assert "request" not in event and "transaction" not in event
