"""The public surface: small, sorted, and the programmatic configure() path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import otel_sentry
from otel_sentry.testing import SentryIngest
from tests.support.apps import clean_env

EXPECTED = [
    "ConfigurationError",
    "Settings",
    "__version__",
    "auto_capture_errors",
    "capture_auth_error",
    "capture_cache_error",
    "capture_database_error",
    "capture_error",
    "capture_model_health_error",
    "capture_payment_error",
    "capture_provider_error",
    "configure",
    "flush",
]


def test_all_is_sorted_and_guarded() -> None:
    assert otel_sentry.__all__ == sorted(otel_sentry.__all__)
    assert otel_sentry.__all__ == EXPECTED, "the public surface changed: update EXPECTED and the docs"
    for name in otel_sentry.__all__:
        assert hasattr(otel_sentry, name)


def test_configure_without_opentelemetry_instrument_captures_errors() -> None:
    script = Path(__file__).parent / "apps" / "programmatic.py"
    with SentryIngest() as ingest:
        result = subprocess.run(
            [sys.executable, str(script), ingest.dsn()],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert ingest.wait_for(lambda i: len(i.events()) == 1, 10), result.stderr
        (event,) = ingest.events()
    assert event["transaction"] == "/boom/{n}"
    assert event["exception"]["values"][-1]["type"] == "LookupError"
    assert event["environment"] == "programmatic" and event["release"] == "prog@1"
