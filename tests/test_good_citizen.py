"""otel_sentry leaves the host's logging and other tracer providers alone (issue 13 items 3 and 5).

Each test runs ``tests/apps/citizen_probe.py`` under ``opentelemetry-instrument`` as a user would, with
``opentelemetry-distro`` installed next to otel_sentry (this environment has both).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from otel_sentry._preflight import CHOSEN_LINE
from otel_sentry.testing import SentryIngest
from tests.support.apps import APPS_DIR, BIN_DIR, clean_env


def run_probe(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    result = subprocess.run(
        [str(BIN_DIR / "opentelemetry-instrument"), sys.executable, "citizen_probe.py"],
        cwd=APPS_DIR,
        env={k: v for k, v in clean_env(env).items() if k != "OTEL_SENTRY_RAISE_INTERNAL_ERRORS"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_without_a_logs_exporter_the_hosts_logging_is_untouched(tmp_path: Any) -> None:
    seen, stderr = run_probe({"OTEL_SENTRY_INBOX_DIR": str(tmp_path)})
    assert seen["root_handlers"] == []  # no bridge to a logs signal nobody receives
    assert "Unclosed client session" in stderr  # Python's last-resort output still appears
    assert "otel_sentry: a warning of ours" in stderr
    assert "recursive" not in stderr.lower()
    assert "already instrumented" not in stderr


def test_other_tracer_providers_keep_their_own_default_sampler(tmp_path: Any) -> None:
    seen, stderr = run_probe({"OTEL_SENTRY_INBOX_DIR": str(tmp_path)})
    assert seen["global_sampler"].startswith("OtelSentrySampler")  # ours, for the provider we built
    assert seen["other_sampler"].startswith("ParentBased{root:AlwaysOnSampler")  # the SDK's default
    assert seen["other_sampled"] is True
    assert "Couldn't recognize sampler" not in stderr


def test_with_the_stock_distro_installed_too_the_start_up_line_says_which_runs_and_why(tmp_path: Any) -> None:
    _seen, stderr = run_probe({"OTEL_SENTRY_INBOX_DIR": str(tmp_path)})
    assert "Configuration of configurator not loaded" not in stderr
    assert stderr.count(CHOSEN_LINE) == 1


def test_with_a_logs_exporter_the_bridge_is_attached_and_our_warnings_stay_out_of_sentry_logs() -> None:
    with SentryIngest() as ingest:
        seen, stderr = run_probe(
            {"SENTRY_DSN": ingest.dsn(), "OTEL_LOGS_EXPORTER": "sentry", "OTEL_BLRP_SCHEDULE_DELAY": "50"}
        )
        assert ingest.wait_for(lambda i: bool(i.items("log")), 10), stderr
        bodies = [log["body"] for item in ingest.items("log") for log in item["items"]]
    assert seen["root_handlers"] == ["opentelemetry.instrumentation.logging.handler.LoggingHandler"]
    assert "the app says hello" in bodies
    assert not [b for b in bodies if b.startswith("otel_sentry")], bodies
    assert "recursive" not in stderr.lower()
