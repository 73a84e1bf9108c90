"""The README's main job: `otel-sentry demo` on a fresh machine, no account, no server of the user's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from otel_sentry._inbox import Inbox
from tests.support import relay
from tests.support.apps import clean_env

OTEL_SENTRY = str(Path(sys.executable).parent / "otel-sentry")


def test_demo_runs_the_gateway_and_reports_what_each_backend_got(tmp_path: Path) -> None:
    inbox_dir = tmp_path / "inbox"
    result = subprocess.run(
        [OTEL_SENTRY, "demo", "--requests", "40", "--inbox-dir", str(inbox_dir)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Sentry issues (local inbox):" in out
    match = re.search(r"Sentry inbox:\s+(\d+) error events in (\d+) issues, (\d+) transactions", out)
    assert match, out
    events, issues, transactions = map(int, match.groups())
    otlp = re.search(r"OTLP receiver:\s+(\d+) spans in (\d+) traces", out)
    assert otlp and int(otlp.group(1)) > 0, out

    inbox = Inbox(inbox_dir)
    assert len(inbox.events()) == events and len(inbox.issues()) == issues
    assert len(inbox.transactions()) == transactions
    types = {issue.type for issue in inbox.issues()}
    # The demo's failure modes: timeouts behind HTTPException(500) from e, a handler-made 503,
    # an unhandled database error and an unhandled ValueError; its 4xx never become issues.
    assert {"HTTPException", "ProviderError", "OperationalError", "ValueError"} <= types, out
    assert "RequestValidationError" not in types
    for event in inbox.events():
        if event["exception"]["values"][-1]["type"] == "IntegrityError":
            # A 402 is not an issue by itself; the app's logger.error inside the except block is
            # (as with sentry-sdk's logging integration), and carries the IntegrityError it handles.
            assert event["exception"]["values"][-1]["mechanism"] == {"type": "logging", "handled": True}
            assert event["logentry"]["formatted"].startswith("Credit claw-back failed")
    for event in inbox.events():
        assert event["request"]["headers"].get("authorization") in (None, "[REDACTED]")
        relay.assert_valid(event)
    for transaction in inbox.transactions():
        relay.assert_valid(transaction)
