"""Every standard variable the SDK reads, checked for the values that hurt: empty, blank, garbage, huge.

The list is the SDK's own (``opentelemetry.environment_variables`` and
``opentelemetry.sdk.environment_variables``), so a variable a new SDK adds is covered by the
generic rules at once: empty or blank means unset (the specification's rule; the SDK would otherwise
read ``OTEL_TRACES_EXPORTER=""`` as "no exporter" and ``OTEL_PROPAGATORS=""`` as a propagator named
""), more than ``MAX_VALUE`` characters is a mistake, and a value of the wrong kind (a number, a URL,
a boolean, one of a few words, an installed entry point, a readable file) is dropped before the SDK
reads it. Each problem is one line naming the variable; the value shown is cut short and never a
header's or a key's. Checks with more to say (propagators, samplers, batch sizes, OTLP headers,
exporter names) live in ``_env_checks`` and the settings table; this module leaves those variables'
non-blank values to them.
"""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from collections.abc import MutableMapping
from pathlib import Path
from typing import Callable, Optional

Report = Callable[[str], None]

MAX_VALUE = 8192  # characters; OTEL_RESOURCE_ATTRIBUTES is the longest any real setup needs
_SHOWN = 60
_ENUMS: dict[str, tuple[str, ...]] = {
    "PROTOCOL": ("grpc", "http/protobuf", "http/json"),
    "COMPRESSION": ("gzip", "deflate", "none"),
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": ("cumulative", "delta", "lowmemory"),
    "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": (
        "explicit_bucket_histogram",
        "base2_exponential_bucket_histogram",
    ),
    "OTEL_METRICS_EXEMPLAR_FILTER": ("always_on", "always_off", "trace_based"),
    "OTEL_LOG_LEVEL": ("debug", "info", "warn", "warning", "error", "critical", "fatal", "notset"),
}
_BOOLEANS = ("OTEL_SDK_DISABLED", "INSECURE", "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED")
_INTEGERS = ("_LIMIT", "_TIMEOUT", "_INTERVAL", "_PORT")
_FILES = ("_CERTIFICATE", "_CLIENT_KEY")
_ENTRY_POINTS = {
    "OTEL_PYTHON_CONTEXT": "opentelemetry_context",
    "OTEL_PYTHON_ID_GENERATOR": "opentelemetry_id_generator",
    "OTEL_PYTHON_TRACER_PROVIDER": "opentelemetry_tracer_provider",
    "OTEL_PYTHON_METER_PROVIDER": "opentelemetry_meter_provider",
    "OTEL_PYTHON_TRACER_CONFIGURATOR": "_opentelemetry_tracer_configurator",
    "OTEL_PYTHON_METER_CONFIGURATOR": "_opentelemetry_meter_configurator",
    "OTEL_PYTHON_LOGGER_CONFIGURATOR": "_opentelemetry_logger_configurator",
}
# Non-blank values these have their own checks for (_env_checks, the exporter names, the settings).
_CHECKED_ELSEWHERE = (
    "OTEL_PROPAGATORS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_",
    "OTEL_BLRP_",
    "_HEADERS",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
)
# Blank values the others report themselves (a blank ratio must not become "sample everything").
_BLANK_CHECKED_ELSEWHERE = ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


def standard_variables() -> list[str]:
    """Every OTEL_* name the installed API and SDK declare."""
    import opentelemetry.environment_variables as api_variables
    import opentelemetry.sdk.environment_variables as sdk_variables

    names = {
        value
        for module in (api_variables, sdk_variables)
        for key, value in vars(module).items()
        if key.startswith("OTEL_") and isinstance(value, str) and value.startswith("OTEL_")
    }
    return sorted(names)


def shown(raw: str) -> str:
    return repr(raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "...")


def _kind_problem(name: str, value: str) -> Optional[str]:
    """What is wrong with a non-blank value of name, or None."""
    lowered = value.lower()
    for suffix, words in _ENUMS.items():
        if name.endswith(suffix) and lowered not in words:
            return f"expected one of {', '.join(words)}"
    if any(part in name for part in _BOOLEANS) and lowered not in ("true", "false"):
        return "expected true or false"
    if name.endswith(_INTEGERS):
        try:
            if int(value) < 0:
                raise ValueError(value)
        except ValueError:
            return "expected an integer >= 0"
    if name.endswith("_ENDPOINT"):
        parts = urllib.parse.urlsplit(value) if "://" in value else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            return "expected a URL such as http://collector:4318"
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            return "expected a URL such as http://collector:4318 (the port is not a number)"
    if name.endswith(_FILES) and not os.access(value, os.R_OK):
        return "expected a readable file"
    group = _ENTRY_POINTS.get(name)
    if group is not None:
        from opentelemetry.util._importlib_metadata import entry_points

        available = sorted({ep.name for ep in entry_points(group=group)})
        if value not in available:
            return f"expected one of {', '.join(available) or 'the installed ' + group}"
    return None


def check_standard_variables(
    env: MutableMapping[str, str], report: Report, own: tuple[str, ...] = ()
) -> None:
    """Drop (with one line each) the values of standard variables the SDK would trip over.

    own: the settings table's variables (SENTRY_*, OTEL_SENTRY_*): only their size is checked here,
    the table reports the rest."""
    for name in [*standard_variables(), *own]:
        raw = env.get(name)
        if raw is None:
            continue
        if len(raw) > MAX_VALUE:
            report(
                f"invalid {name}: {len(raw)} characters, over the {MAX_VALUE} this distro accepts; "
                "ignoring it (as if unset)"
            )
            del env[name]
            continue
        if name in own:
            continue
        value = raw.strip()
        if not value:
            if name not in _BLANK_CHECKED_ELSEWHERE:
                report(f"{name}={raw!r} is blank; treated as unset, as the OpenTelemetry specification says")
                del env[name]
            continue
        if any(part in name for part in _CHECKED_ELSEWHERE):
            continue
        problem = _kind_problem(name, value)
        if problem is not None:
            secret = name.endswith(("_CLIENT_KEY", "_CERTIFICATE"))
            report(
                f"invalid {name}={'(path not shown)' if secret else shown(raw)}: {problem}; "
                "ignoring it (the SDK's default applies)"
            )
            del env[name]
        elif value != raw:
            env[name] = value  # surrounding blanks the SDK would keep ("otlp " is not an exporter)


def writable_inbox(env: MutableMapping[str, str], report: Report, default: Path) -> None:
    """Without a DSN events go to the local inbox: a directory that cannot be written is found now,
    not when the first event is dropped, and a temporary directory is used instead."""
    from ._settings import _parse_dsn

    try:
        if _parse_dsn(env.get("SENTRY_DSN", "")):
            return
    except ValueError:
        pass  # reported with the settings; events go to the inbox
    raw = env.get("OTEL_SENTRY_INBOX_DIR", "").strip()
    directory = Path(raw).expanduser() if raw else default
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError("not writable")
        return
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    fallback = (
        Path(tempfile.gettempdir()) / f"otel-sentry-inbox-{os.getuid() if hasattr(os, 'getuid') else 0}"
    )
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
        instead = f"using {fallback}"
    except OSError:
        instead = "events are counted and dropped"
    report(
        f"invalid OTEL_SENTRY_INBOX_DIR={shown(str(directory))}: not a writable directory ({reason}); "
        + instead
    )
    env["OTEL_SENTRY_INBOX_DIR"] = str(fallback)
