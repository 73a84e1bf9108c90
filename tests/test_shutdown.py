"""Shutdown: on SIGTERM what is queued is delivered or counted, within the configured timeout.

uvicorn re-raises SIGTERM with the default action after its graceful shutdown, so no atexit handler
runs; these tests stop real ``opentelemetry-instrument uvicorn`` processes the way an orchestrator does.
The precise timing figures (exit within timeout + 0.5 s) are measured by bench/faults.py.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_sentry._exporter import SentrySpanExporter
from otel_sentry._runtime import Runtime
from otel_sentry._settings import load_settings
from otel_sentry._transport import ERROR
from otel_sentry.testing import SentryIngest
from tests.support.apps import AppProcess, clean_env
from tests.test_transport import envelope

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        yield int(hanging.getsockname()[1])


def dropped_line(output: str) -> dict[tuple[str, str], int]:
    """The one line shutdown writes: "otel_sentry: dropped 3 error (shutdown), 2 transaction (...)"."""
    found: dict[tuple[str, str], int] = {}
    for line in output.splitlines():
        if "otel_sentry: dropped" in line:
            for n, category, reason in re.findall(r"(\d+) (\w+) \((\w+)\)", line):
                found[(reason, category)] = found.get((reason, category), 0) + int(n)
    return found


def test_sigterm_delivers_what_is_queued_including_spans_still_in_the_batch_processor(
    sentry_ingest: SentryIngest,
) -> None:
    env = {
        "SENTRY_DSN": sentry_ingest.dsn(),
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "60000",  # spans stay in the SDK's queue until something flushes it
    }
    with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
        for n in range(5):
            assert app.get(f"/unhandled/{n}", headers=CLOSE).status_code == 500
        assert sentry_ingest.wait_for(lambda i: len(i.events()) == 5, 10)
        assert sentry_ingest.transactions() == []
        code = app.stop(signal.SIGTERM)
        output = app.output()
    assert code == -signal.SIGTERM, output  # the default action still ends the process
    routes = [t["transaction"] for t in sentry_ingest.transactions()]
    assert routes.count("/unhandled/{item_id}") == 5 and routes.count("/health") >= 1, output
    assert dropped_line(output) == {}, output


def test_sigterm_with_a_hung_sentry_exits_in_time_and_counts_every_event(hung_port: int) -> None:
    env = {
        "SENTRY_DSN": f"http://public@127.0.0.1:{hung_port}/1",
        "OTEL_SENTRY_SHUTDOWN_TIMEOUT": "1",
        "OTEL_SENTRY_REQUEST_TIMEOUT": "30",
        "OTEL_TRACES_EXPORTER": "sentry",
        "OTEL_SENTRY_TRANSACTIONS": "false",
    }
    with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
        for n in range(4):
            assert app.get(f"/unhandled/{n}", headers=CLOSE).status_code == 500
        started = time.monotonic()
        code = app.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
        output = app.output()
    assert code == -signal.SIGTERM, output
    assert elapsed < 1 + 2.0, (elapsed, output)  # generous here; bench/faults.py measures it
    # One in flight (hung), three queued: none delivered, every one counted, in one line.
    assert dropped_line(output) == {("shutdown", "error"): 4}, output


def test_an_apps_own_sigterm_handler_still_runs_after_the_flush(tmp_path: Path, hung_port: int) -> None:
    marker = tmp_path / "handler-ran"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import otel_sentry
        from otel_sentry._runtime import get_runtime

        def on_term(signum, frame):
            open({str(marker)!r}, "w").write("yes")
            sys.exit(3)

        signal.signal(signal.SIGTERM, on_term)
        otel_sentry.configure(dsn="http://public@127.0.0.1:{hung_port}/1", shutdown_timeout=0.5)
        get_runtime().submit({{"event_id": "a" * 32, "level": "error", "message": "queued",
                               "sdk": {{"name": "t", "version": "1"}}}}, "error")
        os.kill(os.getpid(), signal.SIGTERM)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=clean_env(), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 3, result.stderr  # the app's handler decided the exit
    assert marker.read_text() == "yes"
    assert dropped_line(result.stderr) == {("shutdown", "error"): 1}, result.stderr


def test_force_flush_returns_within_its_timeout_on_a_hung_backend(hung_port: int) -> None:
    settings = load_settings({}, dsn=f"http://public@127.0.0.1:{hung_port}/1", request_timeout=30.0)
    runtime = Runtime(settings)
    exporter = SentrySpanExporter(runtime=runtime)
    for _ in range(3):
        runtime.transports[0].submit(envelope(), ERROR)
    started = time.monotonic()
    assert exporter.force_flush(timeout_millis=300) is False
    assert time.monotonic() - started < 0.3 + 1.0
    started = time.monotonic()
    runtime.shutdown(0.3)
    assert time.monotonic() - started < 0.3 + 1.0
    assert sum(runtime.dropped().values()) == 3
