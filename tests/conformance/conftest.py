"""Print the conformance table (the issue's closing note) at the end of the session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.conformance import harness


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not harness.ROWS:
        return
    terminalreporter.write_sep("=", "conformance: stock OpenTelemetry vs otel_sentry")
    terminalreporter.write_line(harness.table(harness.ROWS))
    for row in harness.ROWS:
        if row.tags:
            terminalreporter.write_line(f"{row.app} / {row.server}: " + "; ".join(row.tags))
    out = os.environ.get("OTEL_SENTRY_CONFORMANCE_REPORT")
    if out:
        Path(out).write_text(harness.dump(harness.ROWS))
