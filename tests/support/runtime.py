"""An in-process Sentry bridge delivering to a loopback ingest, for unit tests of the capture API."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from otel_sentry._runtime import Runtime, set_runtime
from otel_sentry._settings import load_settings
from otel_sentry.testing import SentryIngest


@contextlib.contextmanager
def sentry_runtime(ingest: SentryIngest, **settings: Any) -> Iterator[Runtime]:
    """The process-wide runtime for the duration of a test (real envelopes, real HTTP delivery)."""
    runtime = Runtime(load_settings({}, dsn=ingest.dsn(), **settings))
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(None)


def events(ingest: SentryIngest, runtime: Runtime, count: int) -> list[dict[str, Any]]:
    """Flush, then wait until ``count`` events arrived; returns them all."""
    assert runtime.flush(5)
    assert ingest.wait_for(lambda i: len(i.events()) >= count, 5), ingest.events()
    return ingest.events()
