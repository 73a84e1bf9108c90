"""``otel-sentry doctor``: libraries installed without their OpenTelemetry instrumentation, and what
that loses. A library only other packages require (``requests`` comes with the OTLP exporter) is
probably not called by the app itself, so it is a note, not a warning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._doctor import INFO, OK, WARN, Report, _dist_name, _entry_points, _installed

# library -> (instrumentor entry point names that cover it, instrumentation package, what is lost)
_HTTP = "outgoing HTTP calls (provider APIs) get no client spans, and carry no trace headers downstream"
_DB = "no query spans: slow or failing statements are invisible in traces and Sentry transactions"
_LLM = "no gen_ai spans: model, token usage and latency of each call are not recorded"
LIBRARIES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("httpx", ("httpx",), "opentelemetry-instrumentation-httpx", _HTTP),
    ("requests", ("requests",), "opentelemetry-instrumentation-requests", _HTTP),
    ("aiohttp", ("aiohttp-client", "aiohttp_client"), "opentelemetry-instrumentation-aiohttp-client", _HTTP),
    ("sqlalchemy", ("sqlalchemy",), "opentelemetry-instrumentation-sqlalchemy", _DB),
    ("asyncpg", ("asyncpg",), "opentelemetry-instrumentation-asyncpg", _DB),
    ("psycopg", ("psycopg",), "opentelemetry-instrumentation-psycopg", _DB),
    ("psycopg2", ("psycopg2",), "opentelemetry-instrumentation-psycopg2", _DB),
    ("psycopg2-binary", ("psycopg2",), "opentelemetry-instrumentation-psycopg2", _DB),
    (
        "redis",
        ("redis",),
        "opentelemetry-instrumentation-redis",
        "no cache spans: Redis latency and failures are invisible in traces",
    ),
    ("openai", ("openai", "openai_v2"), "opentelemetry-instrumentation-openai-v2", _LLM),
    ("anthropic", ("anthropic",), "opentelemetry-instrumentation-anthropic", _LLM),
    ("google-genai", ("google_genai", "google-genai"), "opentelemetry-instrumentation-google-genai", _LLM),
    ("fastapi", ("fastapi",), "opentelemetry-instrumentation-fastapi", "no server spans for FastAPI apps"),
)
SQLITE = ("sqlite3", ("sqlite3",), "opentelemetry-instrumentation-sqlite3", _DB)


def required_by() -> dict[str, set[str]]:
    """Installed distribution name -> the installed distributions that require it (extras left out):
    a library only other packages need is probably not called by the app itself."""
    import re
    from importlib import metadata

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    found: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        owner = dist.metadata["Name"] or "?"
        for requirement in dist.requires or ():
            if re.search(r"extra\s*==", requirement):
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
            if match:
                found.setdefault(norm(match.group(1)), set()).add(owner)
    return found


# -- instrumentations ---------------------------------------------------------------------------


def check_instrumentations(report: Report, environ: Mapping[str, str]) -> None:
    """Installed libraries whose instrumentation is missing, disabled, or will be skipped."""
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    instrumentors = {ep.name: ep for ep in _entry_points("opentelemetry_instrumentor")}
    disabled = {
        n.strip() for n in environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",") if n.strip()
    }
    seen: set[str] = set()
    needed_by = required_by()
    for library, names, package, loses in (*LIBRARIES, SQLITE):
        version = "stdlib" if library == "sqlite3" else _installed(library)
        if version is None or names[0] in seen:
            continue
        seen.add(names[0])
        found = next((instrumentors[n] for n in names if n in instrumentors), None)
        ident = f"instrumentation.{names[0]}"
        if found is not None and ("*" in disabled or found.name in disabled):
            report.add(
                INFO,
                ident,
                f"{library} {version}: instrumentation disabled by "
                f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS ({loses})",
            )
        elif found is not None:
            conflict = None
            try:
                dist: Any = getattr(found, "dist", None)
                conflict = get_dist_dependency_conflicts(dist)
            except Exception:  # an odd distribution: opentelemetry-instrument would try to load it
                conflict = None
            if conflict:
                report.add(
                    WARN,
                    ident,
                    f"{library} {version}: {package} is installed but "
                    f"opentelemetry-instrument will skip it ({conflict}): {loses}",
                    f"install a {package} release that supports {library} {version}",
                )
            else:
                report.add(OK, ident, f"{library} {version}: instrumented ({_dist_name(found)})")
        else:
            owners = sorted(needed_by.get(library.lower(), ()))
            if library == "sqlite3" or owners:
                why = (
                    "the standard library"
                    if library == "sqlite3"
                    else f"a dependency of {', '.join(owners[:3])}"
                )
                report.add(
                    INFO,
                    ident,
                    f"{library} {version} ({why}) has no instrumentation: if the app calls it, {loses}",
                    f"pip install {package}",
                )
            else:
                report.add(
                    WARN,
                    ident,
                    f"{library} {version} is installed without its instrumentation: {loses}",
                    f"pip install {package}",
                )
