"""Errors in background work become events linked to the request that started the work.

End to end: tests/apps/background_app.py under ``opentelemetry-instrument`` (one shared run, see
tests/support/capture_app.py). Every route returns its server span's trace id; an event "linked to
the request" carries that trace id and the route as its transaction.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import relay
from tests.support.capture_app import Run, background_run

# route -> (kind tag, task name tag, exception type) for work that fails after or beside its request
BACKGROUND = {
    "/bg-tasks": ("starlette.background_task", "failing_sync_job", "LedgerError"),
    "/bg-async-task": ("starlette.background_task", "failing_async_job", "LedgerError"),
    "/fire-and-forget": ("asyncio.task", None, "LedgerError"),
    "/thread": ("thread", "report-thread", "LedgerError"),
    "/executor": ("executor", "executor_job", "LedgerError"),
    "/loop-callback": ("asyncio", None, "LedgerError"),
}


@pytest.fixture(scope="module")
def run() -> Run:
    return background_run()


def outer(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["exception"]["values"][-1]
    return value


@pytest.mark.parametrize("route", sorted(BACKGROUND))
def test_background_failures_join_the_trace_of_their_request(run: Run, route: str) -> None:
    kind, task, exc_type = BACKGROUND[route]
    (event,) = run.events_for(route)
    _status, trace_id = run.responses[route]
    assert event["contexts"]["trace"]["trace_id"] == trace_id, run.output
    assert event["tags"]["background"] == kind
    if task:
        assert event["tags"]["background_task"] == task
    assert outer(event)["type"] == exc_type
    assert outer(event)["mechanism"] == {"type": kind, "handled": False}
    assert event["tags"]["http_status"] == "200"  # the response had already gone out fine
    assert any(f.get("in_app") for f in outer(event)["stacktrace"]["frames"])
    relay.assert_valid(event)


def test_a_task_that_outlives_the_response_still_reports(run: Run) -> None:
    (event,) = run.events_for("/fire-and-forget")
    assert "failed after the response" in outer(event)["value"]
    assert event["request"]["url"].endswith("/fire-and-forget")


def test_gathered_failures_the_route_handles_are_no_issue(run: Run) -> None:
    """The route handles the first failure; gather retrieves the second itself. Nothing was left
    unretrieved and the request answered 200: no issue (issue 12, "only an exception nobody
    retrieved is an error of the background work")."""
    assert run.events_for("/gather") == []


def test_a_task_group_failure_is_one_event_with_every_child(run: Run) -> None:
    (event,) = run.events_for("/task-group")
    values = event["exception"]["values"]
    assert values[-1]["type"] == "ExceptionGroup"
    assert sorted(v["value"] for v in values if v["type"] == "ValueError") == [
        "group child 1",
        "group child 2",
    ]
    assert values[-1]["mechanism"]["handled"] is False
    assert "background" not in event["tags"]  # the request's own capture replaced the task's
    relay.assert_valid(event)


def test_an_awaited_task_failure_is_one_event_not_two(run: Run) -> None:
    (event,) = run.events_for("/awaited-task")
    assert outer(event)["type"] == "ValueError"
    assert outer(event)["mechanism"]["type"] == "asgi"
    assert event["tags"]["http_status"] == "500"


def test_nothing_is_reported_twice(run: Run) -> None:
    seen = [(e.get("transaction"), outer(e)["value"]) for e in run.events if "exception" in e]
    assert len(seen) == len(set(seen)), seen
