"""Bad configuration: the app starts and serves, one clear line names the variable, the value (secrets
masked) and the fix, the fallback is safe, and strict mode refuses to start instead.

The table runs the same startup checks the configurator runs (``_env_checks``, the exporter names, the
settings table, the rules file, the spool) on each case in process; the end-to-end tests below start
real apps under ``opentelemetry-instrument`` with many bad values at once, and grep their whole output
for secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Optional

import pytest

from otel_sentry._configure import apply_environment_defaults, validate_exporter_names
from otel_sentry._env_checks import check_environment, warn
from otel_sentry._env_standard import check_standard_variables, standard_variables, writable_inbox
from otel_sentry._rules import load_rules
from otel_sentry._settings import SETTINGS, Settings, load_settings
from otel_sentry._spool import open_spool
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support import relay
from tests.support.apps import AppProcess, probe

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}
SECRET = "s3cr3t-Key-9f8e7d"  # planted in DSNs and headers; must never appear in any log line
HEADER_SECRET = "Bearer hdr-T0ken-5a4b3c"
ENCODED = HEADER_SECRET.replace(" ", "%20")
BAD_JSON = Path(__file__).parent / "apps" / "bad_rules.json"

Check = Callable[[dict[str, str], Settings], bool]
OWN_VARIABLES = tuple(var for setting in SETTINGS for var in setting.env)


def startup_lines(
    environ: Mapping[str, str], caplog: pytest.LogCaptureFixture
) -> tuple[list[str], dict[str, str], Settings]:
    """What the configurator reports for this environment, the environment as the SDK then reads it,
    and the settings in effect."""
    env = dict(environ)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        check_standard_variables(env, warn, OWN_VARIABLES)
        apply_environment_defaults(env)
        check_environment(env, warn)
        validate_exporter_names(env)
        settings = load_settings(env)
        load_rules(settings.rules_file)
        if settings.dsn:
            open_spool(settings, "http://example/api/1/envelope/")
    lines = [
        r.getMessage() for r in caplog.records if r.name == "otel_sentry" and r.levelno >= logging.WARNING
    ]
    return lines, env, settings


def _sampler_is_safe(env: dict[str, str], settings: Settings) -> bool:
    return env["OTEL_TRACES_SAMPLER"] == "otel_sentry" and "OTEL_TRACES_SAMPLER_ARG" not in env


def _unset(var: str) -> Check:
    return lambda env, settings: var not in env


# (id, environment, the variable the one line names, fragments it must carry, the safe fallback)
CASES: list[tuple[str, dict[str, str], str, tuple[str, ...], Optional[Check]]] = [
    # -- DSNs: malformed, and secret-bearing (the secret never shows) --
    (
        "dsn-garbage",
        {"SENTRY_DSN": "not a dsn"},
        "SENTRY_DSN",
        ("https://<key>@<host>/<project_id>", "local inbox"),
        lambda e, s: s.dsn is None,
    ),
    (
        "dsn-ftp",
        {"SENTRY_DSN": f"ftp://public:{SECRET}@o1.ingest.sentry.io/42"},
        "SENTRY_DSN",
        ("ftp://[REDACTED]@o1.ingest.sentry.io/42",),
        lambda e, s: s.dsn is None,
    ),
    (
        "dsn-no-project",
        {"SENTRY_DSN": f"https://public:{SECRET}@o1.ingest.sentry.io"},
        "SENTRY_DSN",
        ("[REDACTED]@o1.ingest.sentry.io'",),
        lambda e, s: s.dsn is None,
    ),
    (
        "dsn-no-scheme",
        {"SENTRY_DSN": f"public:{SECRET}@o1.ingest.sentry.io/42"},
        "SENTRY_DSN",
        ("[REDACTED]@o1.ingest.sentry.io/42",),
        lambda e, s: s.dsn is None,
    ),
    (
        "dsn-no-key",
        {"SENTRY_DSN": "https://o1.ingest.sentry.io/42"},
        "SENTRY_DSN",
        ("expected a Sentry DSN",),
        lambda e, s: s.dsn is None,
    ),
    (
        "dsn-no-host",
        {"SENTRY_DSN": f"https://{SECRET}@/42"},
        "SENTRY_DSN",
        ("https://[REDACTED]@/42",),
        lambda e, s: s.dsn is None,
    ),
    (
        "dsn-bad-project",
        {"SENTRY_DSN": f"https://{SECRET}@o1.ingest.sentry.io/abc"},
        "SENTRY_DSN",
        ("/abc",),
        lambda e, s: s.dsn is None,
    ),
    ("dsn-just-a-key", {"SENTRY_DSN": SECRET}, "SENTRY_DSN", ("'[REDACTED]'",), lambda e, s: s.dsn is None),
    # -- exporter names --
    (
        "exporter-unknown",
        {"OTEL_TRACES_EXPORTER": "otlp,sentry,zipkin_nope"},
        "OTEL_TRACES_EXPORTER",
        ("'zipkin_nope'", "installed:"),
        lambda e, s: e["OTEL_TRACES_EXPORTER"] == "otlp,sentry",
    ),
    (
        "exporter-typo",
        {"OTEL_TRACES_EXPORTER": "sentyr"},
        "OTEL_TRACES_EXPORTER",
        ("'sentyr'",),
        lambda e, s: e["OTEL_TRACES_EXPORTER"] == "none",
    ),
    (
        "logs-exporter-unknown",
        {"OTEL_LOGS_EXPORTER": "nope"},
        "OTEL_LOGS_EXPORTER",
        ("'nope'",),
        lambda e, s: e["OTEL_LOGS_EXPORTER"] == "none",
    ),
    (
        "metrics-exporter-unknown",
        {"OTEL_METRICS_EXPORTER": "prometheus_nope"},
        "OTEL_METRICS_EXPORTER",
        ("'prometheus_nope'",),
        None,
    ),
    (
        "otlp-grpc-missing",
        {"OTEL_TRACES_EXPORTER": "otlp,sentry", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        "OTEL_TRACES_EXPORTER",
        ("opentelemetry-exporter-otlp-proto-grpc",),
        lambda e, s: e["OTEL_TRACES_EXPORTER"] == "sentry",
    ),
    # -- propagators --
    (
        "propagator-unknown",
        {"OTEL_PROPAGATORS": "nope"},
        "OTEL_PROPAGATORS",
        ("'nope'", "tracecontext,baggage,sentry"),
        lambda e, s: e["OTEL_PROPAGATORS"] == "tracecontext,baggage,sentry",
    ),
    (
        "propagator-one-unknown",
        {"OTEL_PROPAGATORS": "tracecontext,b3nope"},
        "OTEL_PROPAGATORS",
        ("'b3nope'",),
        lambda e, s: e["OTEL_PROPAGATORS"] == "tracecontext",
    ),
    # -- samplers: names and ratios (never "sample everything") --
    (
        "sampler-unknown",
        {"OTEL_TRACES_SAMPLER": "nope"},
        "OTEL_TRACES_SAMPLER=",
        ("'nope'", "otel_sentry", "errors are always kept"),
        _sampler_is_safe,
    ),
    (
        "ratio-minus-one",
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-1"},
        "OTEL_TRACES_SAMPLER_ARG",
        ("'-1'", "between 0 and 1"),
        _sampler_is_safe,
    ),
    (
        "ratio-two",
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
        "OTEL_TRACES_SAMPLER_ARG",
        ("'2'",),
        _sampler_is_safe,
    ),
    (
        "ratio-nan",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "NaN"},
        "OTEL_TRACES_SAMPLER_ARG",
        ("'NaN'",),
        _sampler_is_safe,
    ),
    (
        "ratio-abc",
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "abc"},
        "OTEL_TRACES_SAMPLER_ARG",
        ("'abc'",),
        _sampler_is_safe,
    ),
    (
        "ratio-empty",
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": ""},
        "OTEL_TRACES_SAMPLER_ARG",
        ("''",),
        _sampler_is_safe,
    ),
    # -- rules file: missing, unreadable, invalid, bad entry --
    (
        "rules-missing",
        {"OTEL_SENTRY_RULES_FILE": "/nonexistent/rules.json"},
        "OTEL_SENTRY_RULES_FILE",
        ("No such file", "using the default rules"),
        None,
    ),
    (
        "rules-unreadable",
        {"OTEL_SENTRY_RULES_FILE": "/"},
        "OTEL_SENTRY_RULES_FILE",
        ("Is a directory", "using the default rules"),
        None,
    ),
    (
        "rules-invalid-json",
        {"OTEL_SENTRY_RULES_FILE": str(BAD_JSON)},
        "OTEL_SENTRY_RULES_FILE",
        ("using the default rules",),
        None,
    ),
    # -- batch processor values the SDK would refuse (app untraced) or log with a traceback --
    (
        "bsp-queue-zero",
        {"OTEL_BSP_MAX_QUEUE_SIZE": "0"},
        "OTEL_BSP_MAX_QUEUE_SIZE",
        ("'0'", "2048"),
        _unset("OTEL_BSP_MAX_QUEUE_SIZE"),
    ),
    (
        "bsp-queue-abc",
        {"OTEL_BSP_MAX_QUEUE_SIZE": "abc"},
        "OTEL_BSP_MAX_QUEUE_SIZE",
        ("'abc'",),
        _unset("OTEL_BSP_MAX_QUEUE_SIZE"),
    ),
    (
        "bsp-delay-negative",
        {"OTEL_BSP_SCHEDULE_DELAY": "-5"},
        "OTEL_BSP_SCHEDULE_DELAY",
        ("'-5'", "5000"),
        _unset("OTEL_BSP_SCHEDULE_DELAY"),
    ),
    (
        "bsp-timeout-float",
        {"OTEL_BSP_EXPORT_TIMEOUT": "1.5"},
        "OTEL_BSP_EXPORT_TIMEOUT",
        ("'1.5'",),
        _unset("OTEL_BSP_EXPORT_TIMEOUT"),
    ),
    (
        "bsp-batch-over-queue",
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"},
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        ("larger than OTEL_BSP_MAX_QUEUE_SIZE=2048",),
        lambda e, s: e["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] == "2048",
    ),
    (
        "blrp-batch-zero",
        {"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "0"},
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
        ("'0'",),
        _unset("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"),
    ),
    # -- OTLP headers: a malformed entry is dropped without ever printing its value --
    (
        "headers-colon",
        {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization: {HEADER_SECRET},x-team=core"},
        "OTEL_EXPORTER_OTLP_HEADERS",
        ("'Authorization'", "values not shown"),
        lambda e, s: e["OTEL_EXPORTER_OTLP_HEADERS"] == "x-team=core",
    ),
    (
        "headers-no-name",
        {"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "hdr-T0ken-5a4b3c"},
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ("(unnamed)",),
        _unset("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
    ),
    # -- the settings table --
    (
        "shutdown-nan",
        {"OTEL_SENTRY_SHUTDOWN_TIMEOUT": "NaN"},
        "OTEL_SENTRY_SHUTDOWN_TIMEOUT",
        ("'NaN'", "seconds > 0", "2.0"),
        lambda e, s: s.shutdown_timeout == 2.0,
    ),
    (
        "queue-bytes-negative",
        {"OTEL_SENTRY_QUEUE_MAX_BYTES": "-1"},
        "OTEL_SENTRY_QUEUE_MAX_BYTES",
        ("'-1'",),
        lambda e, s: s.queue_max_bytes == 32 * 1024 * 1024,
    ),
    (
        "spool-bytes-words",
        {"OTEL_SENTRY_SPOOL_MAX_BYTES": "lots"},
        "OTEL_SENTRY_SPOOL_MAX_BYTES",
        ("'lots'",),
        lambda e, s: s.spool_max_bytes == 64 * 1024 * 1024,
    ),
    (
        "spool-dir-unwritable",
        {"SENTRY_DSN": "https://k@o1.ingest.sentry.io/1", "OTEL_SENTRY_SPOOL_DIR": "/proc/otel-sentry-spool"},
        "OTEL_SENTRY_SPOOL_DIR",
        ("writable directory", "no spool"),
        None,
    ),
    (
        "spotlight-maybe",
        {"SENTRY_SPOTLIGHT": "maybe"},
        "SENTRY_SPOTLIGHT",
        ("'maybe'",),
        lambda e, s: s.spotlight is None,
    ),
    (
        "status-codes-5xx",
        {"OTEL_SENTRY_FAILED_STATUS_CODES": "5xx"},
        "OTEL_SENTRY_FAILED_STATUS_CODES",
        ("500-599",),
        lambda e, s: s.failed_status_codes == frozenset(range(500, 600)),
    ),
    (
        "debug-perhaps",
        {"OTEL_SENTRY_DEBUG": "perhaps"},
        "OTEL_SENTRY_DEBUG",
        ("'perhaps'",),
        lambda e, s: s.debug is False,
    ),
    (
        "strict-itself-bad",
        {"OTEL_SENTRY_STRICT": "sometimes"},
        "OTEL_SENTRY_STRICT",
        ("'sometimes'",),
        lambda e, s: s.strict is False,
    ),
    # -- conflicting settings --
    (
        "dsn-without-sentry-exporter",
        {"SENTRY_DSN": "https://k@o1.ingest.sentry.io/1", "OTEL_TRACES_EXPORTER": "otlp"},
        "OTEL_TRACES_EXPORTER",
        ("does not name 'sentry'", "otlp,sentry"),
        None,
    ),
    (
        "dsn-and-inbox",
        {"SENTRY_DSN": "https://k@o1.ingest.sentry.io/1", "OTEL_SENTRY_INBOX_DIR": "/tmp/x"},
        "OTEL_SENTRY_INBOX_DIR",
        ("only used without a DSN",),
        None,
    ),
    (
        "fastapi-auto-configure",
        {"FASTAPI_OTEL_AUTO_CONFIGURE": "true"},
        "FASTAPI_OTEL_AUTO_CONFIGURE",
        ("twice",),
        lambda e, s: e["FASTAPI_OTEL_AUTO_CONFIGURE"] == "false",
    ),
]


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("environ", "variable", "fragments", "fallback"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_value_is_one_clear_line_and_a_safe_fallback(
    environ: dict[str, str],
    variable: str,
    fragments: tuple[str, ...],
    fallback: Optional[Check],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines, env, settings = startup_lines(environ, caplog)
    naming = [line for line in lines if variable in line]
    assert len(naming) == 1, lines
    for fragment in fragments:
        assert fragment in naming[0], naming[0]
    for line in lines:
        assert SECRET not in line and HEADER_SECRET not in line and "hdr-T0ken" not in line, line
    if fallback is not None:
        assert fallback(env, settings), (env, settings)


# -- end to end ---------------------------------------------------------------------------------------
def test_the_app_starts_and_serves_with_many_bad_values_and_no_secret_in_any_line(
    tmp_path: Path, sentry_ingest: SentryIngest, otlp_receiver: OtlpReceiver
) -> None:
    otlp_receiver.respond_with(401, {"Content-Type": "text/plain"}, b"bad token", times=None)
    dsn = sentry_ingest.dsn(public_key=f"public:{SECRET}")  # a DSN that carries a secret key
    env = {
        "SENTRY_DSN": dsn,
        "OTEL_TRACES_EXPORTER": "otlp,sentry,zipkin_nope",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": f"authorization={ENCODED},Bad Header: {HEADER_SECRET}",
        "OTEL_PROPAGATORS": "tracecontext,b3nope",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "NaN",
        "OTEL_BSP_MAX_QUEUE_SIZE": "0",
        "OTEL_BSP_SCHEDULE_DELAY": "abc",
        "OTEL_SENTRY_RULES_FILE": str(tmp_path),  # a directory: unreadable as a file
        "OTEL_SENTRY_SHUTDOWN_TIMEOUT": "-3",
        "OTEL_SENTRY_SPOOL_DIR": "/proc/otel-sentry-spool",
        "SENTRY_SPOTLIGHT": "maybe",
        "OTEL_SENTRY_DEBUG": "true",  # the most verbose our logs get
        "OTEL_SENTRY_RAISE_INTERNAL_ERRORS": "1",
    }
    with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
        assert app.get("/ok/1").status_code == 200
        assert app.get("/unhandled/1", headers=CLOSE).status_code == 500
        assert sentry_ingest.wait_for(lambda i: len(i.events()) == 1, 10), app.output()
        assert app.stop() == 0
        output = app.output()
    for variable in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_PROPAGATORS",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_SENTRY_RULES_FILE",
        "OTEL_SENTRY_SHUTDOWN_TIMEOUT",
        "OTEL_SENTRY_SPOOL_DIR",
        "SENTRY_SPOTLIGHT",
    ):
        naming = [line for line in output.splitlines() if f"invalid {variable}" in line]
        assert len(naming) == 1, (variable, output)
    # The whole output: the DSN's secret key and the exporter headers never appear, in any form.
    for secret in (SECRET, HEADER_SECRET, "hdr-T0ken", ENCODED):
        assert secret not in output, secret
    assert "Failed to auto initialize" not in output
    assert output.count("Traceback (most recent call last)") == 1  # the app's own ZeroDivisionError
    assert otlp_receiver.wait_for(lambda r: len(r.requests()) > 0, 5)  # OTLP still exported (and refused)


def test_strict_mode_refuses_to_start_with_every_problem_in_one_line() -> None:
    env = {
        "OTEL_SENTRY_STRICT": "true",
        "OTEL_TRACES_SAMPLER": "nope",
        "OTEL_BSP_MAX_QUEUE_SIZE": "0",
        "OTEL_TRACES_EXPORTER": "sentry,nope",
        "SENTRY_DSN": f"https://public:{SECRET}@o1.ingest.sentry.io",
    }
    app = AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health", ready_timeout=10)
    with pytest.raises(RuntimeError, match="exited with 78"):
        app.start()
    output = app.output()
    (line,) = [line for line in output.splitlines() if "strict mode" in line]
    for variable in ("OTEL_TRACES_SAMPLER", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_TRACES_EXPORTER"):
        assert variable in line
    assert "not starting" in line and SECRET not in output


@pytest.mark.parametrize("arg", ["-1", "2", "NaN", "abc"])
def test_a_bad_sampler_argument_keeps_the_rules_and_never_samples_everything(arg: str) -> None:
    configured, stderr = probe({"OTEL_TRACES_SAMPLER": "otel_sentry", "OTEL_TRACES_SAMPLER_ARG": arg})
    naming = [line for line in stderr.splitlines() if "OTEL_TRACES_SAMPLER_ARG" in line]
    assert len(naming) == 1 and repr(arg) in naming[0], stderr
    assert configured["sampler"].startswith("OtelSentrySampler")
    shares = configured["sampled_share"]
    assert shares["/health"] == 0.0 and 0.1 <= shares["/v1/chat/completions"] <= 0.3, shares
    assert max(shares.values()) < 1.0


def test_an_unknown_propagator_no_longer_stops_the_app_from_starting() -> None:
    configured, stderr = probe({"OTEL_PROPAGATORS": "tracecontext,nope,sentry"})
    (line,) = [line for line in stderr.splitlines() if "OTEL_PROPAGATORS" in line]
    assert "'nope'" in line and "using 'tracecontext,sentry'" in line
    assert configured["propagators"] == ["SentryPropagator", "TraceContextTextMapPropagator"]


def test_no_log_record_at_any_level_carries_the_dsn_secret(
    sentry_ingest: SentryIngest, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_sentry._runtime import Runtime

    dsn = sentry_ingest.dsn(public_key=f"public:{SECRET}")
    with caplog.at_level(logging.DEBUG):
        runtime = Runtime(load_settings({"SENTRY_DSN": dsn, "OTEL_SENTRY_DEBUG": "true"}))
        sentry_ingest.respond_with(401, body="bad key")
        sentry_ingest.respond_with(500)
        for n in range(3):
            runtime.submit(
                {"event_id": f"{n:032x}", "level": "error", "sdk": {"name": "t", "version": "1"}}, "error"
            )
        assert runtime.flush(10)
        runtime.shutdown(1.0)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for record in caplog.records:
        assert SECRET not in record.getMessage(), record.getMessage()
    assert sentry_ingest.envelopes()[0].auth["sentry_secret"] == SECRET  # it did go where it belongs


# -- every variable x every bad kind of value ------------------------------------------------------------
# The variables are the installed SDK's own list plus the settings table, never a hand-written one.
BAD_VALUES = {"empty": "", "blank": " \t ", "garbage": "@@ not-a-value \x7f@@", "huge": "x" * 100_000}
ALL_VARIABLES = sorted({*standard_variables(), *OWN_VARIABLES})


def test_the_variable_list_comes_from_the_sdk_and_the_settings_table() -> None:
    assert len(ALL_VARIABLES) >= 100
    assert {
        "OTEL_PROPAGATORS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SENTRY_RELEASE",
        "OTEL_PYTHON_CONTEXT",
    } <= set(ALL_VARIABLES)


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_every_variable_with_every_bad_kind_of_value_is_at_most_one_line_and_never_raises(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One variable at a time: at most one line names it; blank and huge values always get theirs."""
    silent: dict[str, list[str]] = {}
    for variable in ALL_VARIABLES:
        lines, env, _settings = startup_lines({variable: BAD_VALUES[kind]}, caplog)
        naming = [line for line in lines if variable + "=" in line or variable + ":" in line]
        assert len(naming) <= 1, (variable, naming)
        if not naming:
            silent.setdefault(kind, []).append(variable)
        if kind == "huge":
            assert len(naming) == 1 and env.get(variable) != BAD_VALUES[kind], variable
            assert BAD_VALUES[kind] not in naming[0]
        if kind in ("empty", "blank") and variable not in OWN_VARIABLES:
            blank_is_unset = variable not in ("OTEL_TRACES_SAMPLER_ARG",)
            assert not blank_is_unset or len(naming) == 1, variable
    # a free-text variable (a service name) takes garbage as given; a typed one never does silently
    typed_but_silent = [
        v
        for v in silent.get("garbage", [])
        if v.endswith(("_ENDPOINT", "_TIMEOUT", "_LIMIT", "_PROTOCOL", "_COMPRESSION", "_INSECURE"))
    ]
    assert typed_but_silent == []


def test_known_bad_values_have_a_clear_line_and_a_safe_fallback(caplog: pytest.LogCaptureFixture) -> None:
    cases = {
        "OTEL_PROPAGATORS": (
            "",
            "treated as unset",
            lambda e: e["OTEL_PROPAGATORS"] == "tracecontext,baggage,sentry",
        ),
        "OTEL_TRACES_EXPORTER": (
            "sentry,sentry",
            "listed twice",
            lambda e: e["OTEL_TRACES_EXPORTER"] == "sentry",
        ),
        "OTEL_EXPORTER_OTLP_ENDPOINT": (
            "not a url",
            "expected a URL",
            lambda e: "OTEL_EXPORTER_OTLP_ENDPOINT" not in e,
        ),
        "OTEL_PYTHON_CONTEXT": ("nope", "expected one of", lambda e: "OTEL_PYTHON_CONTEXT" not in e),
    }
    for variable, (value, fragment, safe) in cases.items():
        lines, env, _settings = startup_lines({variable: value}, caplog)
        (line,) = [line for line in lines if variable in line]
        assert fragment in line and safe(env), (variable, line, env.get(variable))
    for variable, value in (("SENTRY_ENVIRONMENT", "prod\nstaging"), ("SENTRY_RELEASE", "r" * 100_000)):
        lines, env, settings = startup_lines({variable: value}, caplog)
        assert len([line for line in lines if variable in line]) == 1
        assert settings.release is None and settings.environment == "production"


def test_a_huge_rules_file_is_refused_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"sampling": {}, "pad": "' + "x" * (2 * 1024 * 1024) + '"}')
    lines, _env, settings = startup_lines({"OTEL_SENTRY_RULES_FILE": str(rules)}, caplog)
    (line,) = [line for line in lines if "OTEL_SENTRY_RULES_FILE" in line]
    assert "1 MiB" in line and settings.rules_file is None


def test_an_unwritable_inbox_is_found_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_SENTRY_INBOX_DIR": "/proc/otel-sentry-inbox"}
    lines: list[str] = []
    writable_inbox(env, lines.append, Path("/unused"))
    (line,) = lines
    assert "not a writable directory" in line and env["OTEL_SENTRY_INBOX_DIR"] != "/proc/otel-sentry-inbox"
    assert Path(env["OTEL_SENTRY_INBOX_DIR"]).is_dir()


_E2E_SKIP = ("OTEL_SENTRY_INBOX_DIR", "OTEL_SENTRY_SPOOL_DIR", "OTEL_SENTRY_RULES_FILE", "OTEL_CONFIG_FILE")
_EXPECTED = [("/ok/1", 200), ("/unhandled/1", 500), ("/not-found", 404), ("/health", 200)] * 4


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
def test_the_app_serves_every_request_unchanged_with_every_variable_bad_at_once(kind: str) -> None:
    """Every variable set to the same bad kind of value, under a real server: the app starts and each
    request gets the status it has without otel_sentry (the routes' own)."""
    # huge: 10,000 characters each (over the 8,192 accepted; 100,000 each would not fit in an exec)
    value = "x" * 10_000 if kind == "huge" else BAD_VALUES[kind]
    env = {v: value for v in ALL_VARIABLES if not v.startswith(_E2E_SKIP)}
    env["OTEL_SENTRY_DEBUG"] = "false"
    with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
        statuses = [(path, app.get(path, headers=CLOSE).status_code) for path, _ in _EXPECTED]
        assert app.stop() == 0, app.output()[-3000:]
        output = app.output()
    assert statuses == _EXPECTED, output[-3000:]
    assert "Failed to auto initialize" not in output
    assert "x" * 10_000 not in output


@pytest.mark.parametrize(
    "value",
    [
        "production",
        "my env",
        "prod\nstaging",
        "a/b",
        "a\\b",
        "tab\there",
        "None",
        "latest",
        ".",
        "..",
        "ctrl\x7f",
        "x" * 64,
        "x" * 65,
        "y" * 200,
        "y" * 201,
        "v1.2.3+build.4",
        "äöü",
    ],
)
def test_environment_and_release_are_accepted_exactly_when_sentrys_normalizer_keeps_them(value: str) -> None:
    """Relay's StoreNormalizer is the oracle: a value it would discard is refused at start-up."""
    from otel_sentry._settings import _parse_environment, _parse_release

    normalized = relay.normalize(
        {"event_id": "a" * 32, "environment": value, "release": value, "message": "m"}
    )
    for parse, field in ((_parse_environment, "environment"), (_parse_release, "release")):
        try:
            accepted = parse(value) == value
        except ValueError:
            accepted = False
        assert accepted == (normalized.get(field) == value), (field, value)
