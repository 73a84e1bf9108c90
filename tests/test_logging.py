"""Log records as events and breadcrumbs; the OTel logs signal as Sentry logs.

End to end through tests/apps/background_app.py (shared runs, tests/support/capture_app.py), plus
in-process checks of levels and edge cases against a loopback ingest.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from otel_sentry import _capture, _logging
from otel_sentry._runtime import Runtime
from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.capture_app import Run, background_run, logging_run
from tests.support.runtime import events, sentry_runtime

# -- end to end -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run() -> Run:
    return background_run()


def test_log_then_reraise_as_http_500_is_one_event_with_the_chain_and_the_log_message(run: Run) -> None:
    (event,) = run.events_for("/log-then-500")
    values = event["exception"]["values"]
    assert [v["type"] for v in values] == ["KeyError", "HTTPException"]
    # the route's capture replaced the log's; an HTTPException 500 is handled, as sentry-sdk says
    assert values[-1]["mechanism"] == {"type": "starlette", "handled": True}
    assert event["logentry"]["formatted"] == "lookup failed: 'user 42'"
    assert event["logger"] == "background_app"
    crumbs = [c for c in event["breadcrumbs"]["values"] if c.get("type") == "log"]
    assert [(c["level"], c["message"]) for c in crumbs] == [
        ("info", "looking up the user"),
        ("warning", "cache miss for user 42"),
        ("error", "lookup failed: 'user 42'"),
    ]
    relay.assert_valid(event)


def test_error_records_of_requests_that_went_well_are_no_issue_by_default(run: Run) -> None:
    """The request answered 200: its error records stay breadcrumbs and Sentry log items."""
    assert run.events_for("/swallowed") == [] and run.events_for("/log-message") == []


def test_a_swallowed_error_logged_inside_except_carries_its_stack_trace() -> None:
    run = logging_run()  # OTEL_SENTRY_LOG_EVENTS_IN_OK_REQUESTS=true: sentry-sdk's rule
    (event,) = run.events_for("/swallowed")
    assert event["exception"]["values"][-1]["type"] == "KeyError"
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "logging", "handled": True}
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "swallowed"
    assert event["logentry"]["formatted"] == "Failed to load prices: 'price'"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["loading the price table"]
    assert event["contexts"]["trace"]["trace_id"] == run.responses["/swallowed"][1]
    relay.assert_valid(event)


def test_an_error_record_without_an_exception_is_a_message_event() -> None:
    run = logging_run()
    (event,) = run.events_for("/log-message")
    assert "exception" not in event and "exception_type" not in event["tags"]
    assert event["logentry"] == {
        "message": "quota nearly exhausted for user %s",
        "formatted": "quota nearly exhausted for user 42",
    }
    assert event["level"] == "error" and event["logger"] == "background_app"
    assert event["contexts"]["trace"]["trace_id"] == run.responses["/log-message"][1]
    relay.assert_valid(event)


def test_info_records_alone_are_no_event(run: Run) -> None:
    assert run.events_for("/ok") == []


def test_an_app_running_sentry_sdk_too_gets_each_log_event_once() -> None:
    run = logging_run()
    by_route = sorted(str(e.get("transaction")) for e in run.events)
    assert by_route == ["/log-message", "/log-then-500", "/swallowed"], run.output


def test_the_otel_logs_signal_reaches_sentry_logs_in_the_request_trace() -> None:
    run = logging_run()
    logs = [item for envelope in run.logs for item in envelope["items"]]
    by_body = {log["body"]: log for log in logs}
    swallowed = by_body["Failed to load prices: 'price'"]
    assert swallowed["level"] == "error"
    assert swallowed["trace_id"] == run.responses["/swallowed"][1]
    assert len(swallowed["span_id"]) == 16
    attributes = swallowed["attributes"]
    assert attributes["sentry.severity_text"] == {"value": "error", "type": "string"}
    assert attributes["sentry.severity_number"] == {"value": 17, "type": "integer"}
    assert attributes["service.name"] == {"value": "background-app", "type": "string"}
    assert by_body["all good"]["level"] == "info"
    assert all(envelope["version"] == 2 for envelope in run.logs)


# -- in process -----------------------------------------------------------------------------------


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("tests.logging_app")
    log.setLevel(logging.DEBUG)
    log.propagate = False  # keep pytest's capture out of it; the handler sees it anyway
    yield log
    _logging.uninstall()


@pytest.fixture
def runtime(sentry_ingest: SentryIngest) -> Iterator[Runtime]:
    with sentry_runtime(sentry_ingest) as rt:
        yield rt


def test_levels_are_configurable(
    runtime: Runtime, sentry_ingest: SentryIngest, app_logger: logging.Logger
) -> None:
    _logging.install(logging.WARNING, None)
    app_logger.info("not an event")
    app_logger.warning("disk at %d%%", 91)
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["level"] == "warning" and event["logentry"]["formatted"] == "disk at 91%"
    _logging.install(None, None)
    app_logger.critical("nothing is captured when both levels are off")
    assert runtime.flush(5) and len(sentry_ingest.events()) == 1


def test_logger_exception_and_a_later_capture_of_the_same_raise_are_one_event(
    runtime: Runtime, sentry_ingest: SentryIngest, app_logger: logging.Logger
) -> None:
    _logging.install(logging.ERROR, logging.INFO)
    try:
        raise ConnectionError("refused")
    except ConnectionError as exc:
        app_logger.exception("provider call failed")
        assert _capture.capture(runtime, exc, exc.__traceback__, handled=False, mechanism="t") is None
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "logging", "handled": True}
    assert event["logentry"]["formatted"] == "provider call failed"


def test_our_own_and_sdk_loggers_never_become_events(
    runtime: Runtime, sentry_ingest: SentryIngest, app_logger: logging.Logger
) -> None:
    _logging.install(logging.ERROR, logging.INFO)
    for name in ("otel_sentry", "otel_sentry.transport", "sentry_sdk.errors", "urllib3.connectionpool"):
        logging.getLogger(name).error("internal noise")
    app_logger.error("the only event")
    (event,) = events(sentry_ingest, runtime, 1)
    assert event["logentry"]["formatted"] == "the only event"


def test_breadcrumbs_are_per_request_and_bounded(
    runtime: Runtime, sentry_ingest: SentryIngest, app_logger: logging.Logger
) -> None:
    _logging.install(logging.ERROR, logging.DEBUG)
    request = _capture.RequestCapture({"type": "http", "method": "GET", "path": "/x", "headers": []})
    token = _capture.set_current_request(request)
    try:
        for n in range(_logging.MAX_BREADCRUMBS + 50):
            app_logger.debug("step %d", n, extra={"step": n, "password": "hunter2"})
        try:
            raise ValueError("after many steps")
        except ValueError as exc:
            _capture.capture(runtime, exc, exc.__traceback__, handled=False, mechanism="t")
    finally:
        _capture.reset_current_request(token)
    _capture.finish(request)
    runtime.emit_request(request)
    (event,) = events(sentry_ingest, runtime, 1)
    crumbs = event["breadcrumbs"]["values"]
    assert len(crumbs) == _logging.MAX_BREADCRUMBS
    assert crumbs[-1]["message"] == f"step {_logging.MAX_BREADCRUMBS + 49}"
    assert crumbs[-1]["data"] == {"step": _logging.MAX_BREADCRUMBS + 49, "password": "[REDACTED]"}
    assert b"hunter2" not in sentry_ingest.raw_bytes()
    relay.assert_valid(event)


def test_a_record_whose_argument_str_raises_still_becomes_a_valid_event(
    runtime: Runtime, sentry_ingest: SentryIngest, app_logger: logging.Logger
) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    handler = _logging.install(logging.ERROR, logging.INFO)
    assert handler is not None
    # Straight to our handler: any other handler (pytest's own) would fail on this record.
    record = app_logger.makeRecord(
        app_logger.name, logging.ERROR, __file__, 1, "value: %s %s", (Broken(), "\ud800 lone"), None
    )
    handler.handle(record)
    (event,) = events(sentry_ingest, runtime, 1)
    assert "str raised RuntimeError" in event["logentry"]["formatted"]
    relay.assert_valid(event)


def test_the_root_logger_is_left_alone(runtime: Runtime, app_logger: logging.Logger) -> None:
    root_handlers = list(logging.getLogger().handlers)
    _logging.install(logging.ERROR, logging.INFO)
    assert logging.getLogger().handlers == root_handlers  # basicConfig() and dictConfig() still work
    assert getattr(logging.Logger.callHandlers, "__otel_sentry_original__", None) is not None
    _logging.uninstall()
    assert getattr(logging.Logger.callHandlers, "__otel_sentry_original__", None) is None


def test_exc_info_from_another_thread_state_is_not_borrowed(
    runtime: Runtime, sentry_ingest: SentryIngest, app_logger: logging.Logger
) -> None:
    _logging.install(logging.ERROR, None)
    assert sys.exc_info()[1] is None
    app_logger.error("plain message, no exception anywhere")
    (event,) = events(sentry_ingest, runtime, 1)
    assert "exception" not in event
