"""A bug in our own code never reaches the request; it is logged once, with its traceback; under the
test suite it fails the test instead.

The app is ``tests/apps/buggy_app.py``: it plants ``InjectedBug`` in one of our parts (span processor,
sampler, rules and request facts, exception-handler hook, event mapper, exporter, delivery worker).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler

from otel_sentry import _runtime
from otel_sentry._failsafe import GuardedSampler, GuardedSpanProcessor
from otel_sentry.testing import SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}
EXPECTED = {"/ok": 200, "/fail": 500, "/handled": 503}


def drive(app: AppProcess, rounds: int = 3) -> None:
    for _ in range(rounds):
        for path, status in EXPECTED.items():
            response = app.get(path, headers=CLOSE)
            assert response.status_code == status, (path, response.text, app.output())
    assert app.get("/ok").json() == {"status": "fine"}


def internal_error_lines(output: str) -> list[str]:
    return re.findall(r"otel_sentry: internal error while (.+?) \(further ones", output)


@pytest.mark.parametrize(
    ("bugs", "sampler", "expected"),
    [
        (
            "processor,rules,hook,mapper,exporter",
            "always_on",
            {
                "FailedSpanRecorder.on_end",
                "building the request's facts",
                "annotating the server span",
                "observing an exception handler's response",
                "building an error event",
                "exporting spans to Sentry",
            },
        ),
        (
            "sampler,transport",
            "otel_sentry",
            {"OtelSentrySampler.should_sample", "delivering an envelope to sentry"},
        ),
    ],
    ids=["request-path", "sampler-and-delivery"],
)
def test_a_bug_in_our_parts_never_reaches_the_request_and_is_logged_once(
    sentry_ingest: SentryIngest, bugs: str, sampler: str, expected: set[str]
) -> None:
    env = {
        "APP_BUGS": bugs,
        "OTEL_SENTRY_RAISE_INTERNAL_ERRORS": "0",  # production behaviour
        "SENTRY_DSN": sentry_ingest.dsn(),
        "OTEL_TRACES_SAMPLER": sampler,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    with AppProcess("buggy_app", cwd=APPS, env=env, ready_path="/ok") as app:
        drive(app)
        assert app.stop() == 0
        output = app.output()
    lines = internal_error_lines(output)
    assert expected <= set(lines), output  # (a planted bug may also trip a part that uses the broken one)
    assert len(lines) == len(set(lines)), "logged more than once per kind"
    # Enough to fix it: the traceback names the failing function of ours and the exception.
    assert output.count("buggy_app.InjectedBug: injected bug in otel_sentry") >= len(expected)
    assert 'File "/' in output and "otel_sentry/" in output


def test_under_the_test_suite_the_same_bug_fails_the_request() -> None:
    # AppProcess sets OTEL_SENTRY_RAISE_INTERNAL_ERRORS=1, as for every end-to-end test here.
    env = {
        "APP_BUGS": "processor,hook",
        "OTEL_TRACES_SAMPLER": "always_on",
        # spans that end while the response is sent (the server span ends after it: too late to
        # fail a request that was already answered)
        "OTEL_SENTRY_ASGI_SEND_RECEIVE_SPANS": "true",
    }
    with AppProcess("buggy_app", cwd=APPS, env=env, ready_path="/fail") as app:
        try:
            status = app.get("/ok", headers=CLOSE).status_code
        except httpx.HTTPError:
            status = None  # the connection broke: failed just the same
        assert status != 200
        assert app.get("/handled", headers=CLOSE).status_code == 500  # not the app's 503
        app.stop()
        assert "InjectedBug: injected bug in otel_sentry" in app.output()


# -- the guards, in process (the conftest fixture turns raise_internal_errors on) -----------------
class Broken(SpanProcessor, Sampler):
    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor bug")

    def should_sample(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise RuntimeError("sampler bug")

    def get_description(self) -> str:
        return "Broken"


def test_guards_reraise_under_the_suite_and_fall_back_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = TracerProvider(sampler=GuardedSampler(Broken()))
    provider.add_span_processor(GuardedSpanProcessor(Broken()))
    tracer = provider.get_tracer("test")
    with pytest.raises(RuntimeError, match="sampler bug"):
        tracer.start_span("x")
    monkeypatch.setattr(_runtime, "raise_internal_errors", False)
    span = tracer.start_span("request")  # the sampler's fallback: parent-based drop
    assert not span.is_recording()
    recording = TracerProvider()
    recording.add_span_processor(GuardedSpanProcessor(Broken()))
    recording.get_tracer("test").start_span("request").end()  # on_end raised inside: swallowed
    monkeypatch.setattr(_runtime, "raise_internal_errors", True)
    with pytest.raises(RuntimeError, match="processor bug"):
        recording.get_tracer("test").start_span("request").end()
