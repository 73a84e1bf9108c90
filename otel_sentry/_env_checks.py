"""Standard OpenTelemetry variables the SDK would mishandle, checked and made safe before it reads them.

What the SDK does with a bad value (opentelemetry-sdk 1.45): an unknown propagator raises when
``opentelemetry.propagate`` is first imported, so the app does not start at all; an unknown sampler, or
a ratio that is not a number in [0, 1], falls back to sampling everything with a vague line; a
batch-processor size that is not positive makes the processor raise, so the app runs untraced; an
OTLP header entry it cannot parse is logged in full, secret value included. Here each problem is one
line (variable, value with secrets masked, what is accepted, what is used instead) and the variable is
rewritten to the safe value before the SDK reads it. ``report`` receives each line (a warning, or a
list that strict mode raises with).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import MutableMapping
from typing import Callable

logger = logging.getLogger("otel_sentry")

Report = Callable[[str], None]

DEFAULT_PROPAGATORS = "tracecontext,baggage,sentry"
SAFE_SAMPLER = "otel_sentry"
_RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
_HEADER_VARS = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
)
# The SDK's liberal header pattern (opentelemetry.util.re): name=value, value not necessarily encoded.
_HEADER = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
    r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)
_HEADER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# (variable, default, minimum): the batch span and log record processors' settings.
_BATCH = (
    ("OTEL_BSP_SCHEDULE_DELAY", 5000, 1),
    ("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1),
    ("OTEL_BSP_EXPORT_TIMEOUT", 30000, 0),
    ("OTEL_BLRP_SCHEDULE_DELAY", 1000, 1),
    ("OTEL_BLRP_MAX_QUEUE_SIZE", 2048, 1),
    ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512, 1),
    ("OTEL_BLRP_EXPORT_TIMEOUT", 30000, 0),
)


def _entry_point_names(group: str) -> set[str]:
    from opentelemetry.util._importlib_metadata import entry_points

    return {ep.name for ep in entry_points(group=group)}


def check_propagators(env: MutableMapping[str, str], report: Report) -> None:
    """Unknown names are dropped (all unknown: the distro's default list)."""
    raw = env.get("OTEL_PROPAGATORS")
    if raw is None:
        return
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if any(n.lower() == "none" for n in names):
        return
    available = _entry_point_names("opentelemetry_propagator")
    unknown = [n for n in names if n not in available]
    if not unknown:
        return
    kept = [n for n in names if n in available]
    used = ",".join(kept) if kept else DEFAULT_PROPAGATORS
    report(
        f"invalid OTEL_PROPAGATORS={raw!r}: unknown propagator {', '.join(map(repr, unknown))} "
        f"(installed: {', '.join(sorted(available))}); using {used!r}"
    )
    env["OTEL_PROPAGATORS"] = used


def _ratio(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(raw)
    return value


def check_sampler(env: MutableMapping[str, str], report: Report) -> None:
    """An unknown sampler or a bad ratio becomes the distro's sampler (the rules' per-route rates),
    never the SDK's fallback of sampling everything. Errors are captured whatever the sampler."""
    name = env.get("OTEL_TRACES_SAMPLER")
    if name is None:
        return
    arg = env.get("OTEL_TRACES_SAMPLER_ARG")
    available = _entry_point_names("opentelemetry_traces_sampler")
    safe = SAFE_SAMPLER if SAFE_SAMPLER in available else "parentbased_traceidratio"
    instead = (
        f"using OTEL_TRACES_SAMPLER={safe} (the rules' per-route rates; errors are always kept) "
        "instead of the SDK's fallback, which samples everything"
    )
    if name.strip() not in available:
        report(
            f"invalid OTEL_TRACES_SAMPLER={name!r}: unknown sampler "
            f"(installed: {', '.join(sorted(available))}); {instead}"
        )
    elif name.strip() in _RATIO_SAMPLERS and arg is not None:
        try:
            _ratio(arg)
            return
        except ValueError:
            report(
                f"invalid OTEL_TRACES_SAMPLER_ARG={arg!r} for OTEL_TRACES_SAMPLER={name.strip()}: "
                f"expected a number between 0 and 1; {instead}"
            )
    else:
        return
    env["OTEL_TRACES_SAMPLER"] = safe
    env.pop("OTEL_TRACES_SAMPLER_ARG", None)
    if safe != SAFE_SAMPLER:  # pragma: no cover - the distro's sampler is always installed with it
        env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"


def check_batch_processors(env: MutableMapping[str, str], report: Report) -> None:
    """Sizes and delays the SDK accepts: integers, positive (timeouts may be 0), batch <= queue."""
    values: dict[str, int] = {}
    for var, default, minimum in _BATCH:
        raw = env.get(var)
        if raw is None:
            values[var] = default
            continue
        try:
            value = int(raw.strip())
            if value < minimum:
                raise ValueError(raw)
            values[var] = value
        except ValueError:
            accepted = "an integer > 0" if minimum else "an integer >= 0"
            report(f"invalid {var}={raw!r}: expected {accepted}; using the default {default}")
            del env[var]
            values[var] = default
    for prefix in ("OTEL_BSP", "OTEL_BLRP"):
        batch, queue = values[f"{prefix}_MAX_EXPORT_BATCH_SIZE"], values[f"{prefix}_MAX_QUEUE_SIZE"]
        if batch > queue:
            report(
                f"invalid {prefix}_MAX_EXPORT_BATCH_SIZE={batch}: larger than "
                f"{prefix}_MAX_QUEUE_SIZE={queue}, which the SDK refuses (the app would run "
                f"untraced); using {queue}"
            )
            env[f"{prefix}_MAX_EXPORT_BATCH_SIZE"] = str(queue)


def check_otlp_headers(env: MutableMapping[str, str], report: Report) -> None:
    """Entries the SDK cannot parse are dropped here, so it never logs them (with their values)."""
    for var in _HEADER_VARS:
        raw = env.get(var)
        if not raw:
            continue
        entries = [e for e in re.split(r"[ \t]*,[ \t]*", raw) if e.strip()]
        bad = [e for e in entries if not _HEADER.fullmatch(e.strip())]
        if not bad:
            continue
        names = []
        for entry in bad:
            name = re.split(r"[=:]", entry.strip(), maxsplit=1)[0].strip()
            has_separator = "=" in entry or ":" in entry
            names.append(repr(name) if has_separator and _HEADER_NAME.fullmatch(name) else "(unnamed)")
        kept = [e for e in entries if e not in bad]
        report(
            f"invalid {var} entries {', '.join(names)} (values not shown): expected comma-separated "
            f"name=value pairs, values URL-encoded; sending "
            f"{'the other ' + str(len(kept)) + ' header(s)' if kept else 'no headers'} without them"
        )
        if kept:
            env[var] = ",".join(kept)
        else:
            del env[var]


def check_conflicts(env: MutableMapping[str, str], report: Report) -> None:
    """Settings that are each valid but contradict one another."""
    from ._settings import _parse_dsn

    try:
        dsn = _parse_dsn(env.get("SENTRY_DSN", ""))
    except ValueError:
        dsn = None  # reported with the other settings
    exporters = {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    if dsn and "sentry" not in exporters:
        report(
            f"SENTRY_DSN is set but OTEL_TRACES_EXPORTER={env.get('OTEL_TRACES_EXPORTER', '')!r} does "
            "not name 'sentry', so nothing is sent to Sentry; add it (e.g. 'otlp,sentry'), or unset "
            "SENTRY_DSN"
        )
    if dsn and env.get("OTEL_SENTRY_INBOX_DIR", "").strip():
        report(
            "OTEL_SENTRY_INBOX_DIR is set but so is SENTRY_DSN, and events go to the DSN; the inbox "
            "is only used without a DSN"
        )


def check_environment(env: MutableMapping[str, str], report: Report) -> None:
    """Every check above, in the order the SDK would trip over them."""
    check_propagators(env, report)
    check_sampler(env, report)
    check_batch_processors(env, report)
    check_otlp_headers(env, report)
    check_conflicts(env, report)


def warn(problem: str) -> None:
    logger.warning("otel_sentry: %s", problem)
