"""Sentry log items as sentry-sdk sends them (issue 13 item 4).

The oracle is sentry-sdk itself: ``tests/apps/log_items_probe.py`` logs the same records once under
``sentry_sdk.init(enable_logs=True)`` and once under ``opentelemetry-instrument`` with
``OTEL_LOGS_EXPORTER=sentry``; both send to a loopback Sentry ingest, and every record's item must carry
the same record-derived attributes (logger name, message template and parameters, code, thread,
process, extras), including records of loggers that do not propagate to the root, like uvicorn's.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from otel_sentry.testing import SentryIngest
from tests.support.apps import APPS_DIR, BIN_DIR, clean_env

#: record-derived attributes whose values must be equal (ids of the thread and process differ per run)
SAME_VALUE = (
    "sentry.severity_number",
    "sentry.severity_text",
    "sentry.origin",
    "logger.name",
    "sentry.message.template",
    "code.file.path",
    "code.function.name",
    "code.line.number",
    "thread.name",
    "process.executable.name",
)
SAME_PRESENCE = ("thread.id", "process.pid")


def items(ingest: SentryIngest) -> dict[str, dict[str, Any]]:
    """Log items by body."""
    return {log["body"]: log for item in ingest.items("log") for log in item["items"]}


def run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        command, cwd=APPS_DIR, env=clean_env(env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    with SentryIngest() as oracle, SentryIngest() as ours:
        run([sys.executable, "log_items_probe.py"], {"ORACLE_DSN": oracle.dsn()})
        run(
            [str(BIN_DIR / "opentelemetry-instrument"), sys.executable, "log_items_probe.py"],
            {"SENTRY_DSN": ours.dsn(), "OTEL_LOGS_EXPORTER": "sentry"},
        )
        return items(oracle), items(ours)


def test_every_record_sentry_sdk_sends_is_sent_once(both: Any) -> None:
    oracle, ours = both
    assert len(oracle) == 6  # uvicorn's two non-propagating loggers included
    assert set(ours) == set(oracle)


@pytest.mark.parametrize(
    "body",
    [
        "user alice paid 4200 cents",
        "disk is full",
        "a plain message",
        "with an extra field",
        "Started server process [4321]",
        '127.0.0.1:5000 - "GET /x HTTP/1.1" 200',
    ],
)
def test_each_item_carries_what_sentry_sdk_gives_it(both: Any, body: str) -> None:
    oracle, ours = both
    theirs, mine = oracle[body]["attributes"], ours[body]["attributes"]
    assert ours[body]["level"] == oracle[body]["level"]
    for key in SAME_VALUE:
        assert mine.get(key) == theirs.get(key), key
    for key in SAME_PRESENCE:
        assert (key in mine) == (key in theirs), key
    params = {k: v for k, v in theirs.items() if k.startswith("sentry.message.parameter.")}
    assert {k: v for k, v in mine.items() if k.startswith("sentry.message.parameter.")} == params
    if body == "with an extra field":
        assert mine["order_id"] == theirs["order_id"] == {"value": 7, "type": "integer"}
    assert mine["sentry.environment"] == theirs["sentry.environment"]
    assert ours[body]["trace_id"] and len(ours[body]["trace_id"]) == 32
