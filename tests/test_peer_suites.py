"""OpenTelemetry's own ASGI, FastAPI and Starlette test suites pass with otel_sentry active (issue 13).

Each suite runs stock, under ``opentelemetry-instrument`` with otel_sentry, and with the tests' tracer
providers on the otel_sentry sampler at rate 1 (the sampling gate decides every request); see
``tests/peer_suites/run.py``. A new stock failure, a test failing only with otel_sentry, or a stale
entry in ``tests/peer_suites/expected.json`` fails. About two minutes for the three suites.
"""

from __future__ import annotations

import pytest

from tests.peer_suites.run import PACKAGES, load_expected, problems, run_suite, table


@pytest.mark.timeout(600)
@pytest.mark.parametrize("package", PACKAGES)
def test_the_peers_suite_fails_nothing_only_with_otel_sentry(package: str) -> None:
    result = run_suite(package)
    print("\n" + table([result]))
    found = problems(result, load_expected())
    assert not found, "\n".join(found)
