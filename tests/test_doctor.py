"""``otel-sentry doctor`` run as a user runs it (a subprocess with its own environment) against real
loopback receivers: a healthy setup, and broken ones, each with the finding and exit status it
must produce."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import clean_env, free_port

SECRET_KEY = "f3c9a1b2d4e5f60718293a4b5c6d7e8f"


def doctor(env: dict[str, str], *args: str, home: Path) -> tuple[int, dict[str, Any]]:
    full = clean_env(env)
    full.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    full["PATH"] = os.path.dirname(sys.executable) + os.pathsep + full.get("PATH", "")
    result = subprocess.run(
        [sys.executable, "-m", "otel_sentry._cli", "doctor", "--json", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )
    assert result.returncode in (0, 1, 2), result.stderr
    for secret in (SECRET_KEY, "hash-secret-value"):
        assert secret not in result.stdout and secret not in result.stderr
    data = json.loads(result.stdout)
    assert data["exit"] == result.returncode
    return result.returncode, data


def finding(data: dict[str, Any], ident: str) -> dict[str, str]:
    matches = [f for f in data["findings"] if f["id"] == ident]
    assert matches, f"no finding {ident}: {json.dumps(data['findings'], indent=1)}"
    return matches[0]


def statuses(data: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["status"] for f in data["findings"]}


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung ingest or collector."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


def test_healthy_setup(
    tmp_path: Path, sentry_ingest: SentryIngest, otlp_receiver: OtlpReceiver, spotlight: Any, relay: Any
) -> None:
    env = {
        "SENTRY_DSN": sentry_ingest.dsn(public_key=SECRET_KEY),
        "SENTRY_ENVIRONMENT": "production",
        "SENTRY_RELEASE": "gateway@1.2.3",
        "SENTRY_SPOTLIGHT": spotlight.url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_SENTRY_API_KEY_HASH_SECRET": "hash-secret-value",
    }
    paths = ["--path", "/v1/chat/completions", "--path", "/health", "--path", "/api/admin/keys"]
    code, data = doctor(env, "--send-test-event", *paths, home=tmp_path)
    bad = [f for f in data["findings"] if f["status"] in ("warn", "error")]
    assert code == 0 and bad == [], bad
    assert finding(data, "sentry.ingest")["status"] == "ok"
    assert finding(data, "otlp")["message"].endswith("accepts OTLP/HTTP exports (HTTP 200)")
    assert finding(data, "spotlight")["status"] == "ok"
    assert finding(data, "distro.configurator")["status"] == "ok"
    # the test event went through the real delivery path to both destinations, with the printed id
    delivered = finding(data, "test_event.sentry")["message"]
    event_id = delivered.split()[2]
    assert sentry_ingest.wait_for(lambda i: bool(i.events()), timeout=10)
    event = sentry_ingest.events()[0]
    assert event["event_id"] == event_id and event["tags"]["otel_sentry.doctor"] == "true"
    assert event["release"] == "gateway@1.2.3"
    relay.assert_valid(event)
    assert finding(data, "test_event.spotlight")["status"] == "ok"
    assert spotlight.wait_for(lambda s: any(e["event_id"] == event_id for e in s.events()), timeout=10)
    # the settings say where each value came from, secrets masked
    rows = {row["variable"]: row for row in data["settings"]}
    assert rows["SENTRY_DSN"]["source"] == "env SENTRY_DSN" and "[REDACTED]" in rows["SENTRY_DSN"]["value"]
    assert rows["OTEL_SENTRY_API_KEY_HASH_SECRET"]["value"] == "[REDACTED]"
    assert rows["OTEL_SENTRY_SHUTDOWN_TIMEOUT"] == {
        "variable": "OTEL_SENTRY_SHUTDOWN_TIMEOUT",
        "value": "2.0",
        "source": "default",
    }
    otel = {row["variable"]: row for row in data["opentelemetry"]}
    assert otel["OTEL_TRACES_EXPORTER"] == {
        "variable": "OTEL_TRACES_EXPORTER",
        "value": "otlp,sentry",
        "source": "otel_sentry default",
    }
    previews = {p["path"]: p for p in data["previews"]}
    assert previews["/v1/chat/completions"] == {
        "path": "/v1/chat/completions",
        "endpoint_type": "inference_chat",
        "revenue_critical": True,
        "rate": 0.2,
        "rule": "/v1/chat/completions*",
    }
    assert previews["/health"]["rate"] == 0.0 and previews["/api/admin/keys"]["rate"] == 0.5


BROKEN: dict[str, tuple[dict[str, str], list[str], int, dict[str, str]]] = {
    # name: (environment, extra args, exit status, {finding id: status})
    "nothing reachable": (
        {
            "SENTRY_DSN": "http://{key}@127.0.0.1:{closed}/1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:{closed}",
            "SENTRY_SPOTLIGHT": "http://127.0.0.1:{closed}/stream",
        },
        ["--send-test-event", "--timeout", "1"],
        2,
        {"sentry.ingest": "error", "otlp": "error", "spotlight": "warn", "test_event.sentry": "error"},
    ),
    "hung ingest and collector": (
        {
            "SENTRY_DSN": "http://{key}@127.0.0.1:{silent}/1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:{silent}",
        },
        ["--timeout", "0.5"],
        2,
        {"sentry.ingest": "error", "otlp": "error"},
    ),
    "key rejected": ({"SENTRY_DSN": "{dsn}"}, [], 2, {"sentry.ingest": "error"}),
    "another configurator": (
        {"SENTRY_DSN": "{dsn}", "OTEL_PYTHON_CONFIGURATOR": "configurator", "OTEL_PYTHON_DISTRO": "nope"},
        [],
        2,
        {"distro.configurator": "error", "distro.distro": "warn"},
    ),
    "configuration traps": (
        {
            "SENTRY_DSN": "{dsn}",
            "OTEL_CONFIG_FILE": "/etc/otel/config.yaml",
            "FASTAPI_OTEL_AUTO_CONFIGURE": "true",
            "OTEL_TRACES_EXPORTER": "otlp,sentry,zipkin_json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "{otlp}",
        },
        [],
        1,
        {
            "otel.config_file": "warn",
            "otel.fastapi_auto_configure": "warn",
            "otel.exporter": "warn",
            "otlp": "ok",
        },
    ),
    "no sentry exporter, bad values": (
        {
            "SENTRY_DSN": "{dsn}",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_SENTRY_SHUTDOWN_TIMEOUT": "soon",
            "OTEL_PROPAGATORS": "tracecontext,b3",
            "OTEL_TRACES_SAMPLER_ARG": "/v1/*=2",
        },
        [],
        1,
        {"otel.environment": "warn", "settings.invalid": "warn", "rules.sampler_arg": "warn"},
    ),
    "inbox not writable": (
        {"OTEL_SENTRY_INBOX_DIR": "{file}/inbox"},
        ["--send-test-event"],
        2,
        {"inbox": "error", "test_event.inbox": "error"},
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_setup(
    name: str, tmp_path: Path, sentry_ingest: SentryIngest, otlp_receiver: OtlpReceiver, silent_listener: int
) -> None:
    env_template, args, expected_exit, expected = BROKEN[name]
    if name == "key rejected":
        sentry_ingest.respond_with(401, body='{"detail":"invalid api key"}', times=None)
    afile = tmp_path / "a-file"
    afile.write_text("not a directory")
    values = {
        "key": SECRET_KEY,
        "closed": str(free_port()),
        "silent": str(silent_listener),
        "dsn": sentry_ingest.dsn(public_key=SECRET_KEY),
        "otlp": otlp_receiver.endpoint,
        "file": str(afile),
    }
    env = {k: v.format(**values) for k, v in env_template.items()}
    code, data = doctor(env, *args, home=tmp_path)
    found = statuses(data)
    assert {k: found.get(k) for k in expected} == expected, json.dumps(data["findings"], indent=1)
    assert code == expected_exit
    for item in data["findings"]:
        if item["status"] in ("warn", "error"):
            assert item["fix"], f"a problem without a fix: {item}"
    # --ignore takes the failing ids out of the exit status, not out of the report
    ignored = sorted({f["id"].split(".")[0] for f in data["findings"] if f["status"] in ("warn", "error")})
    args_ignored = [a for ident in ignored for a in ("--ignore", ident)]
    code, again = doctor(env, *args, *args_ignored, home=tmp_path)
    assert code == 0 and statuses(again) == found


def test_configuration_traps_messages(tmp_path: Path, sentry_ingest: SentryIngest) -> None:
    env = {
        "SENTRY_DSN": sentry_ingest.dsn(public_key=SECRET_KEY),
        "OTEL_TRACES_EXPORTER": "sentry,zipkin_json",
    }
    _, data = doctor(env, home=tmp_path)
    exporter = finding(data, "otel.exporter")
    assert "'zipkin_json'" in exporter["message"] and "unknown exporter" in exporter["message"]
    assert exporter["fix"].startswith("pip install")


def test_strict_mode_makes_bad_values_errors(tmp_path: Path) -> None:
    env = {"OTEL_SENTRY_STRICT": "true", "OTEL_SENTRY_QUEUE_MAX_EVENTS": "-3"}
    code, data = doctor(env, home=tmp_path)
    problem = finding(data, "settings.invalid")
    assert code == 2 and problem["status"] == "error" and "OTEL_SENTRY_QUEUE_MAX_EVENTS" in problem["message"]
    assert {r["variable"]: r["value"] for r in data["settings"]}["OTEL_SENTRY_STRICT"] == "true"


def test_test_event_lands_in_the_inbox_without_a_dsn(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    code, data = doctor({"OTEL_SENTRY_INBOX_DIR": str(inbox)}, "--send-test-event", home=tmp_path)
    assert code == 0, data["findings"]
    event_id = finding(data, "test_event.inbox")["message"].split()[2]
    listing = subprocess.run(
        [sys.executable, "-m", "otel_sentry._cli", "inbox", "--dir", str(inbox), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert event_id in listing.stdout and "DoctorTestError" in listing.stdout


def test_sampling_previews_follow_the_environment_and_sampler_arg(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"sampling": [{"match": "/v1/chat/*", "rate": 0.05}]}))
    base = {"OTEL_SENTRY_RULES_FILE": str(rules), "OTEL_TRACES_SAMPLER_ARG": "/internal/*=1.0,0.25"}
    args = ["--path", "/v1/chat/completions", "--path", "/internal/jobs", "--path", "/anything"]
    _, data = doctor(base, *args, home=tmp_path)
    got = {p["path"]: (p["rate"], p["rule"]) for p in data["previews"]}
    assert got == {
        "/v1/chat/completions": (0.05, "/v1/chat/*"),
        "/internal/jobs": (1.0, "/internal/*"),
        "/anything": (0.25, "default"),
    }
    assert data["rules"]["source"] == f"{rules} + OTEL_TRACES_SAMPLER_ARG"
    _, dev = doctor({**base, "SENTRY_ENVIRONMENT": "development"}, *args, home=tmp_path)
    assert {p["rule"] for p in dev["previews"]} == {"environment"}
    assert {p["rate"] for p in dev["previews"]} == {1.0}


def test_text_output_is_one_line_per_finding_with_its_fix(tmp_path: Path) -> None:
    env = clean_env({"OTEL_SENTRY_INBOX_DIR": str(tmp_path / "inbox"), "FASTAPI_OTEL_AUTO_CONFIGURE": "1"})
    env.update(HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "otel_sentry._cli", "doctor", "--path", "/v1/messages"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    out = result.stdout
    assert result.returncode == 1
    assert "  WARN   otel.fastapi_auto_configure" in out
    assert "fix: unset FASTAPI_OTEL_AUTO_CONFIGURE" in out
    assert "/v1/messages" in out and "inference_messages" in out
    assert out.rstrip().splitlines()[-1].startswith("Result: 0 error(s), 1 warning(s) -> exit 1")


def test_competing_distro_without_the_start_up_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """opentelemetry-distro installed (it is, with the bench extra) and otel_sentry_preflight.pth
    missing (a broken install, which this environment cannot produce): the choice is luck."""
    from otel_sentry import _doctor

    monkeypatch.setattr(_doctor, "_preflight_hook", lambda: None)
    report = _doctor.Report()
    _doctor.check_distro(report, {})
    found = {c.id: c for c in report.checks}
    assert found["distro.configurator"].status == "warn"
    assert "configurator (opentelemetry-distro)" in found["distro.configurator"].message
    assert found["distro.configurator"].fix.startswith("set OTEL_PYTHON_CONFIGURATOR=otel_sentry")
    report = _doctor.Report()
    _doctor.check_distro(
        report, {"OTEL_PYTHON_DISTRO": "otel_sentry", "OTEL_PYTHON_CONFIGURATOR": "otel_sentry"}
    )
    assert {c.status for c in report.checks if c.id.startswith("distro.") and c.id != "distro.command"} == {
        "ok"
    }


def test_a_library_the_app_installed_itself_without_instrumentation(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests is installed here only as a dependency of the OTLP exporter (a note); installed by
    the app itself it is a warning that says what is lost and what to install."""
    from otel_sentry import _doctor, _doctor_instrumentation

    report = _doctor.Report()
    _doctor_instrumentation.check_instrumentations(report, {})
    assert {c.id: c.status for c in report.checks}["instrumentation.requests"] == "info"
    monkeypatch.setattr(_doctor_instrumentation, "required_by", dict)
    report = _doctor.Report()
    _doctor_instrumentation.check_instrumentations(report, {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx"})
    found = {c.id: c for c in report.checks}
    assert found["instrumentation.requests"].status == "warn"
    assert "no client spans" in found["instrumentation.requests"].message
    assert found["instrumentation.requests"].fix == "pip install opentelemetry-instrumentation-requests"
    assert (
        found["instrumentation.httpx"].status == "info"
        and "disabled" in found["instrumentation.httpx"].message
    )
