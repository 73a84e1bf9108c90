"""Conformance: apps nobody here wrote, and the shapes real codebases have, under real servers.

Each app runs twice with the same requests, under stock ``opentelemetry-instrument`` (the
``opentelemetry-distro`` configurator, OTLP only) and under otel_sentry: statuses and bodies must be
identical, every 5xx exactly one event with the right route, URL and exception, no event for 2xx,
3xx or 4xx, none at shutdown, and every event valid for Relay. The spans' ``http.route`` must be
stock's or more complete. The table for the closing note: ``python -m tests.conformance.report``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conformance import harness, probes
from tests.conformance.harness import Probe

pytestmark = pytest.mark.timeout(240)

REAL_APPS = ("real_sqladmin", "real_starlette_admin", "real_fastapi_problem")


def real_probes(module: str) -> list[Probe]:
    from tests.conformance.harness import Expect

    admin_route = {"real_sqladmin": "/admin/{identity}/list", "real_starlette_admin": "/admin/{key}/list"}
    if module in admin_route:  # both admin apps: the same requests, each with its own route template
        return [
            Probe("GET", "/", 200),
            Probe("GET", "/admin/user/list", 200),
            Probe("GET", "/admin/nothing/list", 404),
            Probe(
                "GET",
                "/admin/broken/list",
                500,
                Expect(admin_route[module], "/admin/broken/list", "OperationalError"),
            ),
        ]
    return [
        Probe("GET", "/users/1", 200),
        Probe("GET", "/users/0", 404),
        Probe("GET", "/users/abc", 422),
        Probe("GET", "/users/13", 500, Expect("/users/{user_id}", "/users/13", "LedgerError")),
    ]


LAST: dict[str, harness.RunResult] = {}


def run_pair(
    module: str, checks: list[Probe], server: str, python: Path = Path(sys.executable), **kw: object
) -> harness.Row:
    stock = harness.run(module, checks, server=server, mode="stock", python=python, **kw)  # type: ignore[arg-type]
    ours = harness.run(module, checks, server=server, mode="otel_sentry", python=python, **kw)  # type: ignore[arg-type]
    assert stock.started and ours.started, ours.output[-3000:] + stock.output[-3000:]
    LAST["ours"] = ours
    row = harness.check(module, checks, stock, ours)
    harness.ROWS.append(row)
    return row


def assert_clean(row: harness.Row) -> None:
    __tracebackhide__ = True
    bad = {
        k: getattr(row, k)
        for k in (
            "false_issues",
            "wrong_route_url",
            "duplicates",
            "missing",
            "answers_differ",
            "span_routes_differ",
            "span_hygiene",
            "relay_errors",
        )
        if getattr(row, k)
    }
    assert not bad, f"{row.app} under {row.server}: {bad}\n" + "\n".join(row.problems)


@pytest.mark.parametrize("server", harness.SERVERS)
def test_app_shapes(server: str) -> None:
    row = run_pair("shapes", probes.shapes(), server)
    assert_clean(row)
    # what the events say, from evidence: the exception's own provider/model, an import error
    assert "/v1/chat/completions: provider_error provider=anthropic model=claude-3-5-haiku" in row.tags
    assert "/v1/embeddings: configuration_error" in row.tags
    # a response that broke mid-stream is a failed transaction, though it started with 200
    (streamed,) = [t for t in LAST["ours"].transactions if t.get("transaction") == "/stream-fail"]
    assert streamed["contexts"]["trace"]["status"] == "internal_error"


def test_root_path_is_not_doubled() -> None:
    row = run_pair("shapes", probes.shapes("/prefix"), "uvicorn", extra_args=["--root-path", "/prefix"])
    row.server += " --root-path /prefix"
    assert_clean(row)


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_catch_all_handler(server: str) -> None:
    assert_clean(run_pair("catchall", probes.catchall(), server))


@pytest.mark.parametrize("module", REAL_APPS)
def test_real_apps(module: str) -> None:
    pytest.importorskip(module.split("_", 1)[1])  # the app's package (not on every Python)
    assert_clean(run_pair(module, real_probes(module), "uvicorn"))


def test_real_app_under_gunicorn() -> None:
    pytest.importorskip("sqladmin")
    assert_clean(run_pair("real_sqladmin", real_probes("real_sqladmin"), "gunicorn"))


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_lifespan_failure_is_one_event(server: str) -> None:
    result = harness.run("lifespan_fail", [], server=server, mode="otel_sentry", ready_timeout=15)
    assert not result.started
    types = [harness._exception_type(e) for e in result.events]
    assert types == ["StartupError"], (types, result.output[-3000:])
    assert harness.relay_errors(result.events) == 0


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_other_pythons(version: str) -> None:
    """The app shapes and the real apps that support this Python, under uvicorn."""
    import subprocess

    from tests.conformance.pythons import venv_for

    try:
        python = venv_for(version)
    except LookupError as exc:
        pytest.skip(str(exc))
    rows = [run_pair("shapes", probes.shapes(), "uvicorn", python=python)]
    for module in REAL_APPS:
        package = module.split("_", 1)[1]
        if subprocess.run([str(python), "-c", f"import {package}"], capture_output=True).returncode == 0:
            rows.append(run_pair(module, real_probes(module), "uvicorn", python=python))
    for row in rows:
        row.server += f" (Python {version})"
        assert_clean(row)
