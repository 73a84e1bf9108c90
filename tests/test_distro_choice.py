"""With OpenTelemetry's stock ``opentelemetry-distro`` installed next to otel_sentry (the OTel docs tell
everyone to install it; this test environment has both), ``opentelemetry-instrument`` must run
otel_sentry, not whichever entry point the disk lists first, and a user who names the stock one
keeps it."""

from __future__ import annotations

from opentelemetry.util._importlib_metadata import entry_points

from otel_sentry._preflight import choose_distro
from tests.support.apps import probe

SITECUSTOMIZE = "/venv/lib/python3.11/site-packages/opentelemetry/instrumentation/auto_instrumentation"


def test_this_environment_has_both_distros_so_the_e2e_tests_cover_the_choice() -> None:
    names = {entry.name for entry in entry_points(group="opentelemetry_distro")}
    assert {"distro", "otel_sentry"} <= names


def test_opentelemetry_instrument_runs_otel_sentry_when_nothing_names_a_distro() -> None:
    configured, stderr = probe({})
    assert configured["sampler"].startswith("OtelSentrySampler"), stderr
    assert configured["destinations"], "otel_sentry's Sentry bridge was not built"


def test_a_user_who_names_the_stock_distro_keeps_it() -> None:
    configured, _stderr = probe(
        {
            "OTEL_PYTHON_DISTRO": "distro",
            "OTEL_PYTHON_CONFIGURATOR": "configurator",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert not configured["sampler"].startswith("OtelSentrySampler"), configured
    assert configured["destinations"] == []


def test_only_processes_started_by_opentelemetry_instrument_are_touched() -> None:
    plain: dict[str, str] = {"PYTHONPATH": "/app"}
    choose_distro(plain)
    assert plain == {"PYTHONPATH": "/app"}
    instrumented = {"PYTHONPATH": f"{SITECUSTOMIZE}:/app"}
    choose_distro(instrumented)
    assert instrumented["OTEL_PYTHON_DISTRO"] == instrumented["OTEL_PYTHON_CONFIGURATOR"] == "otel_sentry"
    for named in ({"OTEL_PYTHON_DISTRO": "distro"}, {"OTEL_PYTHON_CONFIGURATOR": "configurator"}):
        env = {"PYTHONPATH": SITECUSTOMIZE, **named}
        choose_distro(env)
        assert env == {"PYTHONPATH": SITECUSTOMIZE, **named}
