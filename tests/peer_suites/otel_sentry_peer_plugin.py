"""pytest plugin loaded into the OpenTelemetry instrumentations' own test suites (``-p``).

It records every test's outcome to ``OTEL_SENTRY_PEER_RESULTS`` (JSON lines) and, per
``OTEL_SENTRY_PEER_MODE``:

* ``stock``: nothing else; otel_sentry is not activated.
* ``otel_sentry``: the run is under ``opentelemetry-instrument`` (the runner starts it so): the
  plugin checks that otel_sentry's configurator really ran, and installs the sampling gate in the
  FastAPI instrumentation module as the distro does when it loads that instrumentor.
* ``gate``: as ``otel_sentry``, and every ``TracerProvider`` a test builds without a sampler gets the
  otel_sentry sampler at rate 1, so the sampling gate decides every request; the ASGI module's
  middleware class is the gated one too, so the ASGI suite goes through the gate as well.

Kept outside the ``tests`` package on purpose: the peers' suites are a package named ``tests`` too.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

MODE = os.environ.get("OTEL_SENTRY_PEER_MODE", "stock")
RESULTS = os.environ.get("OTEL_SENTRY_PEER_RESULTS")


def _activate_gate_sampler() -> None:
    """TracerProvider() without a sampler gets the otel_sentry sampler at rate 1 (per provider)."""
    from opentelemetry.sdk.trace import TracerProvider

    from otel_sentry._rules import Rules
    from otel_sentry._sampler import OtelSentrySampler

    original = TracerProvider.__init__
    rules = Rules(sampling=(), default_sample_rate=1.0, source="peer suites: rate 1")

    def __init__(self: TracerProvider, *args: Any, **kwargs: Any) -> None:
        if not args and kwargs.get("sampler") is None:
            kwargs["sampler"] = OtelSentrySampler(rules, None)
        original(self, *args, **kwargs)

    TracerProvider.__init__ = __init__  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if MODE == "stock":
        return
    # the runner's start-up setting for opentelemetry-instrument, not part of the suite's environment
    # (the suite's own auto-instrumentation tests read it)
    os.environ.pop("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", None)
    from otel_sentry import _configure

    if not _configure._configured:
        raise pytest.UsageError(
            f"peer suites, mode {MODE}: otel_sentry's configurator did not run "
            "(start pytest under opentelemetry-instrument)"
        )
    import opentelemetry.instrumentation.asgi as otel_asgi

    from otel_sentry import _distro, _sampling_gate

    _distro._gate_middleware("fastapi")  # what the distro does when it loads the FastAPI instrumentor
    if MODE == "gate":
        _activate_gate_sampler()
        _sampling_gate.install(otel_asgi)
        if _sampling_gate._policy is None or not _sampling_gate._policy.drop_unsampled:
            raise pytest.UsageError("peer suites, mode gate: the sampling gate is not engaged")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if RESULTS is None:
        return
    failed = report.failed
    outcome = "failed" if failed else ("skipped" if report.skipped else "passed")
    if report.when != "call" and not failed and not (report.skipped and report.when == "setup"):
        return
    with open(RESULTS, "a", encoding="utf-8") as out:
        out.write(json.dumps({"test": report.nodeid, "when": report.when, "outcome": outcome}) + "\n")
