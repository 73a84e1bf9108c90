"""Validate event/transaction payloads with Relay's own normalizer (sentry-relay), not our guesses.

``StoreNormalizer.normalize_event`` (sentry-relay 0.10.1) returns the normalized event with soft
problems (bad timestamps, levels, ids, statuses, ...) listed under ``errors`` (the key is absent when
there are none) and raises ``sentry_relay.ProcessingError`` subclasses for hard failures, e.g.
``ProcessingErrorInvalidTransaction`` for a transaction without a valid trace context.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from sentry_relay import ProcessingError  # type: ignore[attr-defined]
from sentry_relay.processing import StoreNormalizer

# How many payloads this test session had Relay validate, by type; printed in the terminal summary.
VALIDATED: Dict[str, int] = {}


def normalize(event: Dict[str, Any]) -> Dict[str, Any]:
    """Relay's normalized form of ``event`` (raises ``ProcessingError`` for invalid transactions)."""
    normalized: Dict[str, Any] = StoreNormalizer(project_id=1, enable_trimming=True).normalize_event(event)
    return normalized


def _dump(event: Dict[str, Any]) -> str:
    return json.dumps(event, indent=2, sort_keys=True, default=repr)[:20000]


def assert_valid(event: Dict[str, Any]) -> Dict[str, Any]:
    """Fail the test unless Relay accepts ``event`` without errors; return the normalized event."""
    __tracebackhide__ = True
    kind = str(event.get("type") or "error")
    VALIDATED[kind] = VALIDATED.get(kind, 0) + 1
    try:
        normalized = normalize(event)
    except ProcessingError as exc:
        # The message carries a long native backtrace after a blank line; keep the first part.
        reason = str(exc).split("\n\n", 1)[0]
        pytest.fail(f"Relay rejected the event: {type(exc).__name__}: {reason}\nevent:\n{_dump(event)}")
    errors = normalized.get("errors") or []
    if errors:
        pytest.fail(
            "Relay reported errors:\n"
            + json.dumps(errors, indent=2, default=repr)
            + f"\nevent:\n{_dump(event)}"
        )
    return normalized
