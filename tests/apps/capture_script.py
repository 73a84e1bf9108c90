"""A worker script (no web framework, no span of its own) using a seeds helper after configure()."""

from __future__ import annotations

import os
import sys

os.environ["OTEL_TRACES_SAMPLER"] = "always_on"

import otel_sentry
from otel_sentry.sentry_context import capture_database_error

otel_sentry.configure(dsn=sys.argv[1], environment="worker")


def nightly_cleanup() -> None:
    try:
        raise ConnectionResetError("database connection reset during cleanup")
    except ConnectionResetError as e:
        event_id = capture_database_error(e, operation="delete", table="sessions")
        assert event_id, "the helper returns the event id"


nightly_cleanup()
assert otel_sentry.flush(5.0)
