"""Where events go: the local inbox (no DSN), Spotlight, and what happens with a bad exporter list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from otel_sentry.testing import OtlpReceiver
from tests.support import relay
from tests.support.apps import AppProcess
from tests.support.spotlight import Spotlight

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}
OTEL_SENTRY = str(Path(sys.executable).parent / "otel-sentry")


def test_without_a_dsn_events_go_to_the_local_inbox_and_the_cli_lists_them(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    env = {  # exporter left unset; every request sampled (sampling has its own tests)
        "OTEL_SENTRY_INBOX_DIR": str(inbox),
        "OTEL_SERVICE_NAME": "inbox-app",
        "OTEL_TRACES_SAMPLER_ARG": "*=1",
    }
    with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
        for path in ("/unhandled/1", "/unhandled/2", "/http-503", "/not-found"):
            app.get(path, headers=CLOSE)
        assert app.stop() == 0
        output = app.output()
    # The default exporter list works on a fresh machine: no collector, so no connection errors.
    assert "Connection refused" not in output and "Failed to export" not in output, output
    listing = subprocess.run(
        [OTEL_SENTRY, "inbox", "--dir", str(inbox), "--json"], capture_output=True, text=True, check=True
    )
    data = json.loads(listing.stdout)
    issues = {issue["type"]: issue for issue in data["issues"]}
    assert set(issues) == {"ZeroDivisionError", "HTTPException"}
    assert issues["ZeroDivisionError"]["count"] == 2  # two requests, one issue
    assert issues["ZeroDivisionError"]["routes"] == ["/unhandled/{item_id}"]
    assert data["events"] == 3 and data["transactions"] >= 4
    text = subprocess.run(
        [OTEL_SENTRY, "inbox", "--dir", str(inbox)], capture_output=True, text=True, check=True
    )
    assert "ZeroDivisionError" in text.stdout and "/unhandled/{item_id}" in text.stdout


def test_spotlight_sidecar_receives_the_events(tmp_path: Path, spotlight: Spotlight) -> None:
    env = {"SENTRY_SPOTLIGHT": spotlight.url, "OTEL_SENTRY_INBOX_DIR": str(tmp_path / "inbox")}
    with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
        app.get("/unhandled/5", headers=CLOSE)
        app.get("/http-503", headers=CLOSE)
        assert app.stop() == 0
    assert spotlight.wait_for(lambda s: len(s.events()) >= 2, 15), spotlight.output()
    types = sorted(e["exception"]["values"][-1]["type"] for e in spotlight.events())
    assert types == ["HTTPException", "ZeroDivisionError"]
    for event in spotlight.events():
        relay.assert_valid(event)


def test_an_unknown_exporter_name_is_dropped_with_a_clear_line_and_the_app_serves(tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry,no_such_exporter",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SENTRY_INBOX_DIR": str(tmp_path / "inbox"),
            "OTEL_TRACES_SAMPLER_ARG": "*=1",
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            assert app.get("/ok/3").status_code == 200
            assert app.get("/unhandled/3", headers=CLOSE).status_code == 500
            assert app.stop() == 0
            output = app.output()
        assert "OTEL_TRACES_EXPORTER" in output and "'no_such_exporter'" in output
        assert receiver.wait_for(lambda r: any(s["name"] == "GET /ok/{item_id}" for s in r.spans()), 10)
    from otel_sentry._inbox import Inbox

    assert [e["transaction"] for e in Inbox(tmp_path / "inbox").events()] == ["/unhandled/{item_id}"]


def test_a_hanging_sentry_never_slows_requests_or_blocks_shutdown() -> None:
    """Delivery is off the request path: a DSN whose server accepts and never answers costs nothing."""
    import socket
    import time

    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(64)
        port = hanging.getsockname()[1]
        env = {
            "SENTRY_DSN": f"http://public@127.0.0.1:{port}/1",
            "OTEL_SENTRY_REQUEST_TIMEOUT": "30",  # a blocked request would take 30 s
            "OTEL_SENTRY_SHUTDOWN_TIMEOUT": "1",
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            started = time.monotonic()
            for n in range(5):
                assert app.get(f"/unhandled/{n}", headers=CLOSE).status_code == 500
            assert time.monotonic() - started < 10
            stopping = time.monotonic()
            assert app.stop(timeout=20) == 0
            assert time.monotonic() - stopping < 10, app.output()
