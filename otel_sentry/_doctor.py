"""``otel-sentry doctor``, the checks that need no network: settings, distro, exporters,
instrumentations, rules.

Every check reads what the running pieces read - the settings table (``_settings``), the distro's
environment defaults (``_configure.apply_environment_defaults`` on a copy of the environment), the
SDK's entry points, ``opentelemetry-instrument``'s dependency-conflict test, the rules and sampler
code - so a finding here is what the app would meet at startup, not a second opinion.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

OK, INFO, WARN, ERROR = "ok", "info", "warn", "error"


@dataclass
class Check:
    """One finding line: a status, an id (``--ignore`` takes it), what was found and the fix."""

    status: str
    id: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"status": self.status, "id": self.id, "message": self.message, "fix": self.fix}


@dataclass
class SettingRow:
    variable: str
    value: str
    source: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    settings: list[SettingRow] = field(default_factory=list)
    otel: list[SettingRow] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=dict)
    previews: list[dict[str, Any]] = field(default_factory=list)

    def add(self, status: str, id: str, message: str, fix: str = "") -> None:
        self.checks.append(Check(status, id, message, fix))


@contextmanager
def collected_warnings(into: list[str]) -> Iterator[None]:
    """otel_sentry's own warning lines (bad settings, bad rules), collected instead of printed."""

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into.append(record.getMessage().removeprefix("otel_sentry: "))

    logger = logging.getLogger("otel_sentry")
    handler, propagate = _Collect(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _entry_points(group: str) -> list[Any]:
    from opentelemetry.util._importlib_metadata import entry_points

    return list(entry_points(group=group))


def _dist_name(entry_point: Any) -> str:
    dist = getattr(entry_point, "dist", None)
    return str(getattr(dist, "name", None) or getattr(entry_point, "value", "?"))


def _preflight_hook() -> Optional[Path]:
    """Where otel_sentry_preflight.pth is (it picks otel_sentry as distro under opentelemetry-instrument)."""
    import site

    places = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    for place in dict.fromkeys(places):
        candidate = Path(place) / "otel_sentry_preflight.pth"
        if candidate.is_file():
            return candidate
    return None


def _installed(distribution: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# -- settings -----------------------------------------------------------------------------------


def check_settings(report: Report, environ: Mapping[str, str]) -> Any:
    """Every setting with its effective value (secrets masked) and where it came from."""
    from ._settings import SETTINGS, load_settings, mask_secret, parse_resource_attributes, strict_requested

    problems: list[str] = []
    with collected_warnings(problems):
        settings = load_settings(dict(environ), strict=False)
    resource = parse_resource_attributes(environ.get("OTEL_RESOURCE_ATTRIBUTES"))
    fallbacks = {
        "environment": ("deployment.environment.name", "deployment.environment"),
        "release": ("service.version",),
        "service_name": ("service.name",),
    }
    strict = strict_requested(environ)
    for setting in SETTINGS:
        value = strict if setting.name == "strict" else getattr(settings, setting.name)
        named = next((var for var in setting.env if var in environ), None)
        if named is not None and not any(p.startswith(f"invalid {named}=") for p in problems):
            source = f"env {named}"
        elif named is not None:
            source = f"default (env {named} invalid)"
        else:
            key = next((k for k in fallbacks.get(setting.name, ()) if k in resource), None)
            source = f"OTEL_RESOURCE_ATTRIBUTES {key}" if key else "default"
        shown = _show(value, setting)
        if setting.secret and value:
            shown = mask_secret(str(value))
        report.settings.append(SettingRow(setting.env[0], shown, source))
    for problem in problems:
        status = ERROR if strict else WARN
        fix = "fix the value (docs/configuration.md)" + ("; strict mode refuses to start" if strict else "")
        report.add(status, "settings.invalid", problem, fix)
    if not problems:
        report.add(OK, "settings", f"{len(SETTINGS)} settings read, none invalid")
    return settings


def _show(value: Any, setting: Any) -> str:
    if value is None or value == ():
        return setting.default_doc or "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, frozenset) and setting.name == "failed_status_codes":
        return _ranges(sorted(value))
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if setting.name.startswith("log_") and isinstance(value, int):
        return logging.getLevelName(value)
    return str(value)


def _ranges(codes: list[int]) -> str:
    """[500, 501, ..., 599] -> "500-599"."""
    parts: list[str] = []
    start = prev = codes[0] if codes else 0
    following: list[Optional[int]] = [*codes[1:], None]
    for code in following:
        if code is not None and code == prev + 1:
            prev = code
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if code is not None:
            start = prev = code
    return ",".join(parts) if codes else "none"


# -- distro, configurator, exporters ------------------------------------------------------------

_OTEL_SHOWN = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_PYTHON_DISTRO",
    "OTEL_PYTHON_CONFIGURATOR",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
)


def effective_environment(report: Report, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment as otel_sentry's distro and checks leave it before the SDK reads it."""
    from . import _env_checks
    from ._configure import apply_environment_defaults, validate_exporter_names
    from ._redact import mask_url_secrets

    env: dict[str, str] = dict(environ)
    with collected_warnings([]):
        apply_environment_defaults(env)
    env["FASTAPI_OTEL_AUTO_CONFIGURE"] = environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "")
    lines: list[str] = []
    _env_checks.check_environment(env, lines.append)
    validate_exporter_names(env, lines.append)
    for line in lines:
        exporter = "unknown exporter" in line
        fix = "pip install the exporter, or remove the name" if exporter else "fix the variable"
        report.add(WARN, "otel.exporter" if exporter else "otel.environment", line, fix)
    for var in _OTEL_SHOWN:
        if var in env and env[var] != "":
            source = "env" if var in environ else "otel_sentry default"
            report.otel.append(SettingRow(var, mask_url_secrets(env[var]), source))
    return env


def check_distro(report: Report, environ: Mapping[str, str]) -> None:
    """Which distro and configurator ``opentelemetry-instrument`` will load, and what can stop ours."""
    distros = {ep.name: _dist_name(ep) for ep in _entry_points("opentelemetry_distro")}
    configurators = {ep.name: _dist_name(ep) for ep in _entry_points("opentelemetry_configurator")}
    beside = Path(sys.executable).parent / "opentelemetry-instrument"
    if shutil.which("opentelemetry-instrument") is None and beside.exists():
        report.add(
            INFO,
            "distro.command",
            f"opentelemetry-instrument is not on PATH but is at {beside}",
            "activate the virtualenv, or start the app with that path",
        )
    elif shutil.which("opentelemetry-instrument") is None:
        report.add(
            WARN,
            "distro.command",
            "opentelemetry-instrument is not on PATH",
            "pip install opentelemetry-instrumentation (an otel-sentry dependency) in this environment",
        )
    hook = _preflight_hook()
    for var, found, what in (
        ("OTEL_PYTHON_DISTRO", distros, "distro"),
        ("OTEL_PYTHON_CONFIGURATOR", configurators, "configurator"),
    ):
        named = environ.get(var, "")
        others = sorted(f"{n} ({d})" for n, d in found.items() if n != "otel_sentry")
        if not named and hook is None and others:
            report.add(
                WARN,
                f"distro.{what}",
                f"otel_sentry's start-up hook (otel_sentry_preflight.pth) is not "
                f"installed, and other {what}s are ({', '.join(others)}): opentelemetry-instrument loads "
                "whichever it finds first",
                f"set {var}=otel_sentry, or reinstall otel-sentry",
            )
        elif not named:
            detail = f"; also installed: {', '.join(others)}" if others else ""
            report.add(
                OK,
                f"distro.{what}",
                f"opentelemetry-instrument loads the otel_sentry {what} "
                f"(otel_sentry's start-up hook names it when {var} is unset){detail}",
            )
        elif named == "otel_sentry":
            report.add(OK, f"distro.{what}", f"{var}=otel_sentry")
        elif named in found:
            loses = (
                "no Sentry events and no otel_sentry sampler"
                if what == "configurator"
                else ("otel_sentry's environment defaults (exporters, sampler, propagators) are not applied")
            )
            report.add(
                ERROR if what == "configurator" else WARN,
                f"distro.{what}",
                f"{var}={named} loads {found[named]} instead of otel_sentry: {loses}",
                f"unset {var} (or set it to otel_sentry)",
            )
        else:
            loses = (
                "no configurator runs at all: the app is untraced"
                if what == "configurator"
                else ("the stock default distro is used")
            )
            report.add(
                ERROR if what == "configurator" else WARN,
                f"distro.{what}",
                f"{var}={named!r} names no installed {what} ({', '.join(sorted(found)) or 'none'}): {loses}",
                f"unset {var} (or set it to otel_sentry)",
            )
    if environ.get("OTEL_CONFIG_FILE"):
        report.add(
            WARN,
            "otel.config_file",
            f"OTEL_CONFIG_FILE={environ['OTEL_CONFIG_FILE']} is set: "
            "otel_sentry builds the pipeline from environment variables and ignores the file (the "
            "SDK's own configurator would instead ignore its arguments, with one warning)",
            "unset OTEL_CONFIG_FILE and use environment variables",
        )
    if environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").strip().lower() in ("1", "true", "yes", "on"):
        report.add(
            WARN,
            "otel.fastapi_auto_configure",
            "FASTAPI_OTEL_AUTO_CONFIGURE=true: otel_sentry "
            "turns it off at startup (FastAPI would add a second OTLP exporter, exporting every span "
            "twice, and refuses OTEL_TRACES_EXPORTER=otlp,sentry)",
            "unset FASTAPI_OTEL_AUTO_CONFIGURE; OTEL_TRACES_EXPORTER names the exporters",
        )


# -- rules --------------------------------------------------------------------------------------


def check_rules(report: Report, settings: Any, env: Mapping[str, str], paths: list[str]) -> None:
    """The sampling rules as the sampler will apply them, and previews of given paths."""
    from ._rules import load_rules
    from ._sampler import parse_sampler_arg

    problems: list[str] = []
    with collected_warnings(problems):
        rules = load_rules(settings.rules_file)
    for problem in problems:
        report.add(WARN, "rules", problem, "fix the rules file (docs/rules.md)")
    source = rules.source
    if env.get("OTEL_TRACES_SAMPLER", "otel_sentry") == "otel_sentry" and env.get("OTEL_TRACES_SAMPLER_ARG"):
        arg = env["OTEL_TRACES_SAMPLER_ARG"]
        try:
            entries, default = parse_sampler_arg(arg)
            rules = rules.with_sampling(entries, default)
            source += " + OTEL_TRACES_SAMPLER_ARG"
        except ValueError as exc:  # the sampler says the same at startup and goes on without it
            report.add(
                WARN,
                "rules.sampler_arg",
                f"invalid OTEL_TRACES_SAMPLER_ARG={arg!r}: {exc}; the sampler ignores it",
                "use comma-separated glob=rate entries and at most one bare default rate "
                "(e.g. '0.05,/v1/chat/*=0.5')",
            )
    elif env.get("OTEL_TRACES_SAMPLER", "otel_sentry") != "otel_sentry":
        report.add(
            INFO,
            "rules.sampler",
            f"OTEL_TRACES_SAMPLER={env['OTEL_TRACES_SAMPLER']}: the sampling "
            "rules below are not used for traces (errors are captured whatever the sampler)",
        )
    environment = settings.environment
    report.rules = {
        "source": source,
        "environment": environment,
        "full_sampling": environment in rules.full_sampling_environments,
        "sampling": [{"match": p, "rate": r} for p, r in rules.sampling],
        "default_rate": rules.default_sample_rate,
        "endpoint_types": len(rules.endpoint_types),
        "revenue_critical": sorted(rules.revenue_critical),
    }
    if not problems:
        report.add(
            OK,
            "rules",
            f"rules from {source}: {len(rules.sampling)} sampling rules, "
            f"{len(rules.endpoint_types)} endpoint types",
        )
    for path in paths:
        endpoint = rules.endpoint_type(path)
        rate, rule = rules.sampling_rule(path, environment)
        report.previews.append(
            {
                "path": path,
                "endpoint_type": endpoint,
                "revenue_critical": rules.is_revenue_critical(endpoint),
                "rate": rate,
                "rule": rule,
            }
        )


def run_local_checks(
    report: Report, environ: MutableMapping[str, str], paths: list[str]
) -> tuple[Any, dict[str, str]]:
    settings = check_settings(report, environ)
    check_distro(report, environ)
    env = effective_environment(report, environ)
    from ._doctor_instrumentation import check_instrumentations

    check_instrumentations(report, environ)
    check_rules(report, settings, env, paths)
    return settings, env


def default_environ() -> MutableMapping[str, str]:
    return dict(os.environ)
