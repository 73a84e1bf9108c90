"""Shared fixtures: loopback Sentry/OTLP receivers, the real Spotlight sidecar, Relay validation."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

# Helpers are imported as ``tests.support.*``; make that work without an editable install too.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.append(_REPO_ROOT)

from otel_sentry.testing import OtlpReceiver, SentryIngest  # noqa: E402
from tests.support import relay as relay_support  # noqa: E402
from tests.support.spotlight import Spotlight  # noqa: E402


@pytest.fixture(autouse=True)
def _fail_on_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """In production an internal error is logged once and counted; under the tests it fails the test."""
    from otel_sentry import _runtime

    monkeypatch.setattr(_runtime, "raise_internal_errors", True)


@pytest.fixture
def sentry_ingest() -> Iterator[SentryIngest]:
    with SentryIngest() as ingest:
        yield ingest


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def spotlight() -> Iterator[Spotlight]:
    """A fresh sidecar per test (~1 s). Fails, never skips, when `npm ci` has not been run."""
    with Spotlight() as sidecar:
        yield sidecar


@pytest.fixture
def relay() -> SimpleNamespace:
    """``relay.assert_valid(event)`` / ``relay.normalize(event)``: Relay's verdict on a payload."""
    return SimpleNamespace(assert_valid=relay_support.assert_valid, normalize=relay_support.normalize)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many produced payloads Relay's own normalizer validated (a failure fails its test)."""
    if relay_support.VALIDATED:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(relay_support.VALIDATED.items()))
        terminalreporter.write_line(f"Relay StoreNormalizer validated: {counts}")
