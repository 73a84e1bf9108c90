"""Every setting of otel_sentry, declared once.

The table below feeds the loader, the warnings a bad value produces, and the generated reference in
docs/configuration.md. Standard names (SENTRY_*, OTEL_*) come first; the project's own use the
``OTEL_SENTRY_`` prefix. A bad value never raises into the host app: it produces one warning line
naming the variable, the value (secrets masked), what is accepted and what is used instead, unless
strict mode asks for a startup error.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ._redact import mask_url_secrets

logger = logging.getLogger("otel_sentry")

DEFAULT_SPOTLIGHT_URL = "http://localhost:8969/stream"
PREFIX = "OTEL_SENTRY_"


class ConfigurationError(ValueError):
    """Raised at startup, in strict mode only, listing every invalid setting."""


Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str
    env: tuple[str, ...]
    parse: Parser
    default: Any
    accepted: str
    doc: str
    secret: bool = False
    default_doc: str | None = None


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


def _parse_optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _parse_dsn(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    from ._dsn import parse_dsn  # not sentry_sdk's Dsn: importing sentry_sdk slows start-up

    try:
        parse_dsn(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


def _parse_spotlight(raw: str) -> str | None:
    value = raw.strip()
    try:
        return DEFAULT_SPOTLIGHT_URL if _parse_bool(value) else None
    except ValueError:
        pass
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return value
    raise ValueError(raw)


def _parse_status_codes(raw: str) -> frozenset[int]:
    """Parse "500-599" or "500,502-504" into a set of HTTP status codes."""
    codes: set[int] = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        start, end = int(low), int(high or low)
        if not (100 <= start <= end <= 599):
            raise ValueError(raw)
        codes.update(range(start, end + 1))
    return frozenset(codes)


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(raw)
    return value


def _sample_rate(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(raw)
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _default_inbox_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "otel-sentry" / "inbox"


_RESTRICTED = ("\n", "\r", "\t", "\x0b", "\x0c", "/", "\\")


def _restricted(value: str) -> bool:
    return any(c in _RESTRICTED or ord(c) < 32 or ord(c) == 127 for c in value)


def _parse_environment(raw: str) -> str | None:
    """What Sentry's normalizer keeps (Relay discards other values, and with them the event's
    environment): at most 64 characters, no control characters or slashes, not "None", "." or ".."."""
    value = raw.strip()
    if not value:
        return None
    if len(value) > 64 or _restricted(value) or value in ("None", ".", ".."):
        raise ValueError(raw)
    return value


def _parse_release(raw: str) -> str | None:
    """What Sentry's normalizer keeps: at most 200 characters, no control characters or slashes, not
    ".", ".." or "latest"."""
    value = raw.strip()
    if not value:
        return None
    if len(value) > 200 or _restricted(value) or value.lower() in (".", "..", "latest"):
        raise ValueError(raw)
    return value


MAX_RULES_FILE_BYTES = 1024 * 1024


def _parse_rules_file(raw: str) -> Path:
    """A rules file is a few kilobytes; a huge one (a wrong path) would hold up start-up parsing it."""
    path = _parse_path(raw)
    try:
        size = path.stat().st_size
    except OSError:
        return path  # missing or unreadable: the rules loader says which
    if path.is_file() and size > MAX_RULES_FILE_BYTES:
        raise ValueError(raw)
    return path


def _parse_path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError(raw)
    return Path(raw.strip()).expanduser()


BOOL = "true or false (also 1/0, yes/no, on/off)"
LOG_LEVEL = "a logging level (DEBUG, INFO, WARNING, ERROR, CRITICAL or a number), or off"
_DEBUG_ROUTE_PATH = re.compile(r"^/[A-Za-z0-9/_.~-]+$")


def _parse_log_level(raw: str) -> Optional[int]:
    value = raw.strip().upper()
    if value in ("OFF", "NONE", "FALSE", "0", ""):
        return None
    if value.isdigit() and 0 < int(value) <= 50:
        return int(value)
    level = {"WARN": logging.WARNING, "FATAL": logging.CRITICAL}.get(value, logging.getLevelName(value))
    if isinstance(level, int):
        return level
    raise ValueError(raw)


def _parse_body_size(raw: str) -> str:
    value = raw.strip().lower()
    if value in ("never", "small", "medium", "always"):
        return value
    raise ValueError(raw)


def _parse_debug_route(raw: str) -> Optional[str]:
    """true -> /sentry-debug, false/empty -> off, or a path of its own."""
    value = raw.strip()
    try:
        return "/sentry-debug" if _parse_bool(value) else None
    except ValueError:
        pass
    if _DEBUG_ROUTE_PATH.match(value):
        return value
    raise ValueError(raw)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "dsn",
        ("SENTRY_DSN",),
        _parse_dsn,
        None,
        "a Sentry DSN: https://<key>@<host>/<project_id>",
        "Where error events and transactions go. Unset: the local inbox (see OTEL_SENTRY_INBOX_DIR).",
        secret=True,
        default_doc="unset (local inbox)",
    ),
    Setting(
        "environment",
        ("SENTRY_ENVIRONMENT",),
        _parse_environment,
        "production",
        "at most 64 characters, no control characters or slashes",
        "Sentry environment. Falls back to deployment.environment(.name) in OTEL_RESOURCE_ATTRIBUTES.",
    ),
    Setting(
        "release",
        ("SENTRY_RELEASE",),
        _parse_release,
        None,
        "at most 200 characters, no control characters or slashes, not '.', '..' or 'latest'",
        "Sentry release. Falls back to service.version in OTEL_RESOURCE_ATTRIBUTES.",
    ),
    Setting(
        "spotlight",
        ("SENTRY_SPOTLIGHT",),
        _parse_spotlight,
        None,
        f"{BOOL}, or the sidecar URL",
        f"Also send every envelope to a Spotlight sidecar (true means {DEFAULT_SPOTLIGHT_URL}).",
        default_doc="off",
    ),
    Setting(
        "debug",
        ("SENTRY_DEBUG", "OTEL_SENTRY_DEBUG"),
        _parse_bool,
        False,
        BOOL,
        "Log what otel_sentry captures and sends (logger 'otel_sentry' at DEBUG).",
    ),
    Setting(
        "service_name",
        ("OTEL_SERVICE_NAME",),
        _parse_optional_str,
        None,
        "any text",
        "OpenTelemetry service name; tags events as service.name. Falls back to service.name in "
        "OTEL_RESOURCE_ATTRIBUTES.",
    ),
    Setting(
        "server_name",
        ("OTEL_SENTRY_SERVER_NAME",),
        _parse_optional_str,
        None,
        "any text",
        "The server_name of events.",
        default_doc="the host name",
    ),
    Setting(
        "failed_status_codes",
        ("OTEL_SENTRY_FAILED_STATUS_CODES",),
        _parse_status_codes,
        frozenset(range(500, 600)),
        "HTTP status codes and ranges, e.g. 500-599 or 500,502-504",
        "Responses with these statuses turn the exception behind them (an HTTPException or one an "
        "exception handler turned into a response) into an issue.",
        default_doc="500-599",
    ),
    Setting(
        "send_default_pii",
        ("OTEL_SENTRY_SEND_DEFAULT_PII",),
        _parse_bool,
        False,
        BOOL,
        "As sentry-sdk's send_default_pii: when off, no client IP address and no raw e-mail leave "
        "the process.",
    ),
    Setting(
        "include_local_variables",
        ("OTEL_SENTRY_INCLUDE_LOCAL_VARIABLES",),
        _parse_bool,
        True,
        BOOL,
        "Attach frame local variables to stack frames (sensitive names are scrubbed).",
    ),
    Setting(
        "local_variables_all_frames",
        ("OTEL_SENTRY_LOCAL_VARIABLES_ALL_FRAMES",),
        _parse_bool,
        False,
        BOOL,
        "Local variables on every frame, library frames included, as sentry-sdk does; off: on in-app "
        "frames only (the innermost frame when none is in-app), a tenth of the cost per error.",
    ),
    Setting(
        "max_request_body_size",
        ("OTEL_SENTRY_MAX_REQUEST_BODY_SIZE",),
        _parse_body_size,
        "medium",
        "never, small (up to 1,000 bytes), medium (up to 10,000 bytes) or always",
        "As sentry-sdk's max_request_body_size: the JSON or form body of a failed request, as far as "
        "the app read it, in its error events' request.data, scrubbed; bigger bodies (by Content-Length) "
        "are marked removed, raw bodies and uploaded files are never sent. always keeps up to 1 MiB.",
    ),
    Setting(
        "bypass_untraced_routes",
        ("OTEL_SENTRY_BYPASS_UNTRACED_ROUTES",),
        _parse_bool,
        True,
        BOOL,
        "Requests to routes the sampling rules never trace (the leading rate-0 rules: `/health*`, "
        "`/metrics*`) skip the instrumentation middleware altogether; their errors still become "
        "events, and what they call is not traced (an incoming sampled trace is still continued). "
        "With a metrics exporter they still record the instrumentation's `http.server` metrics.",
    ),
    Setting(
        "bypass_unsampled_requests",
        ("OTEL_SENTRY_BYPASS_UNSAMPLED_REQUESTS",),
        _parse_bool,
        True,
        BOOL,
        "Requests the sampler drops skip the instrumentation middleware (they run under the same "
        "unsampled trace context, and their errors still become events). With a metrics exporter they "
        "still record the instrumentation's `http.server` metrics, with the same attributes.",
    ),
    Setting(
        "asgi_send_receive_spans",
        ("OTEL_SENTRY_ASGI_SEND_RECEIVE_SPANS",),
        _parse_bool,
        False,
        BOOL,
        "Keep the FastAPI instrumentation's internal `http send`/`http receive` spans (one per ASGI "
        "message). Off: excluded, as the instrumentation's `exclude_spans` does; they say nothing the "
        "server span does not, and cost a third of a sampled request (docs/performance.md).",
    ),
    Setting(
        "include_source_context",
        ("OTEL_SENTRY_INCLUDE_SOURCE_CONTEXT",),
        _parse_bool,
        True,
        BOOL,
        "Attach source lines around each frame.",
    ),
    Setting(
        "in_app_include",
        ("OTEL_SENTRY_IN_APP_INCLUDE",),
        _parse_list,
        (),
        "comma-separated module prefixes",
        "Modules whose frames are in_app, as sentry-sdk's in_app_include.",
    ),
    Setting(
        "in_app_exclude",
        ("OTEL_SENTRY_IN_APP_EXCLUDE",),
        _parse_list,
        (),
        "comma-separated module prefixes",
        "Modules whose frames are not in_app, as sentry-sdk's in_app_exclude.",
    ),
    Setting(
        "transactions",
        ("OTEL_SENTRY_TRANSACTIONS",),
        _parse_bool,
        True,
        BOOL,
        "Send sampled traces to Sentry as transactions (errors are sent either way).",
    ),
    Setting(
        "profiles_sample_rate",
        ("SENTRY_PROFILES_SAMPLE_RATE", "OTEL_SENTRY_PROFILES_SAMPLE_RATE"),
        _sample_rate,
        0.0,
        "a number from 0 to 1",
        "Share of sampled transactions that are profiled (a stack sample of every thread at 101 Hz, "
        "sent as a Sentry profile linked to its transaction), as sentry-sdk's profiles_sample_rate; "
        "the seeds use 0.05. 0: no profiler thread at all (docs/performance.md has the cost).",
    ),
    Setting(
        "profile_session_sample_rate",
        ("OTEL_SENTRY_PROFILE_SESSION_SAMPLE_RATE",),
        _sample_rate,
        0.0,
        "a number from 0 to 1",
        "Continuous profiling, as sentry-sdk's profile_session_sample_rate with "
        "profile_lifecycle='trace': the share of processes that profile while a sampled transaction "
        "runs, sent as profile_chunk items every 60 s. When set, it replaces the transaction profiles.",
    ),
    Setting(
        "auto_session_tracking",
        ("OTEL_SENTRY_AUTO_SESSION_TRACKING",),
        _parse_bool,
        True,
        BOOL,
        "Release health, as sentry-sdk's auto_session_tracking: with a release set, every HTTP request "
        "is a session, sent as per-minute aggregates (exited, errored, crashed) per release and "
        "environment.",
    ),
    Setting(
        "adopt_sentry_sdk",
        ("OTEL_SENTRY_ADOPT_SENTRY_SDK",),
        _parse_bool,
        True,
        BOOL,
        "When the app also calls sentry_sdk.init(), route its error events through otel_sentry (one "
        "exception, one event) and drop its transactions (no second set).",
    ),
    Setting(
        "slow_request_seconds",
        ("OTEL_SENTRY_SLOW_REQUEST_SECONDS",),
        _positive_float,
        5.0,
        "seconds > 0",
        "Requests slower than this get a warning breadcrumb on their events and the span attribute "
        "otel_sentry.slow_request.",
    ),
    Setting(
        "api_key_hash_secret",
        ("OTEL_SENTRY_API_KEY_HASH_SECRET",),
        _parse_optional_str,
        None,
        "any text (keep it secret)",
        "Hash API keys with HMAC-SHA256 under this secret instead of the seeds' plain sha256, so a "
        "leaked hash cannot be checked against guessed keys.",
        secret=True,
        default_doc="unset (plain sha256, first 16 hex chars)",
    ),
    Setting(
        "scrub_keys",
        ("OTEL_SENTRY_SCRUB_KEYS",),
        _parse_list,
        (),
        "comma-separated name fragments",
        "More sensitive names: values under any name containing one of these are replaced, in every "
        "backend (added to the seeds' list: password, secret, token, api_key, authorization, cookie...).",
    ),
    Setting(
        "scrub_safe_keys",
        ("OTEL_SENTRY_SCRUB_SAFE_KEYS",),
        _parse_list,
        (),
        "comma-separated exact names",
        "Names that look sensitive but are not (added to the built-in list: max_tokens, total_tokens, "
        "api_key_id, api_key_hash...).",
    ),
    Setting(
        "capture_background",
        ("OTEL_SENTRY_CAPTURE_BACKGROUND",),
        _parse_bool,
        True,
        BOOL,
        "Capture exceptions raised in background work (Starlette/FastAPI BackgroundTasks, asyncio tasks "
        "and loop callbacks, threads, ThreadPoolExecutor jobs), linked to the request that started it.",
    ),
    Setting(
        "log_event_level",
        ("OTEL_SENTRY_LOG_EVENT_LEVEL",),
        _parse_log_level,
        logging.ERROR,
        LOG_LEVEL,
        "Log records at or above this level become Sentry events (with their exception, if any); "
        "as sentry-sdk's LoggingIntegration(event_level=...).",
        default_doc="ERROR",
    ),
    Setting(
        "log_events_in_ok_requests",
        ("OTEL_SENTRY_LOG_EVENTS_IN_OK_REQUESTS",),
        _parse_bool,
        False,
        BOOL,
        "Error log records logged during a request that ends below the failed statuses (2xx, 3xx, "
        "4xx) become events too, as with sentry-sdk. Off: they stay breadcrumbs and Sentry log items "
        "(counted), and become an issue only when their request fails or ends without a response.",
    ),
    Setting(
        "log_breadcrumb_level",
        ("OTEL_SENTRY_LOG_BREADCRUMB_LEVEL",),
        _parse_log_level,
        logging.INFO,
        LOG_LEVEL,
        "Log records at or above this level become breadcrumbs on later events of the same request; "
        "as sentry-sdk's LoggingIntegration(level=...).",
        default_doc="INFO",
    ),
    Setting(
        "debug_route",
        ("OTEL_SENTRY_DEBUG_ROUTE",),
        _parse_debug_route,
        None,
        f"{BOOL}, or a path such as /internal/sentry-debug",
        "Add the seeds' test endpoint to Starlette/FastAPI apps (true means /sentry-debug): GET captures "
        "a test event and returns its id, ?raise_exception=true raises one. Not traced.",
        default_doc="off",
    ),
    Setting(
        "rules_file",
        ("OTEL_SENTRY_RULES_FILE",),
        _parse_rules_file,
        None,
        "a path to a JSON rules file of at most 1 MiB",
        "Replace the default rules (endpoint types, revenue-critical types, sampling rates) section by "
        "section; see docs/rules.md.",
        default_doc="unset (the seeds' rules)",
    ),
    Setting(
        "promotion",
        ("OTEL_SENTRY_PROMOTION",),
        _parse_bool,
        False,
        BOOL,
        "Tail promotion: record unsampled traces (not exported) and export the ones that error, to "
        "Sentry and every OTLP backend. Off by default: recording every unsampled request costs about "
        "as much again as the instrumentation itself (docs/performance.md). Errors are events either "
        "way. Routes at rate 0 are never recorded.",
    ),
    Setting(
        "promotion_max_traces",
        ("OTEL_SENTRY_PROMOTION_MAX_TRACES",),
        _positive_int,
        1000,
        "a positive integer",
        "Most unsampled traces held for promotion at once; the oldest is evicted (and counted) first.",
    ),
    Setting(
        "promotion_max_spans",
        ("OTEL_SENTRY_PROMOTION_MAX_SPANS",),
        _positive_int,
        1000,
        "a positive integer",
        "Most spans held per unsampled trace; further ones are dropped (and counted).",
    ),
    Setting(
        "promotion_max_seconds",
        ("OTEL_SENTRY_PROMOTION_MAX_SECONDS",),
        _positive_float,
        60.0,
        "seconds > 0",
        "Longest an unsampled trace is held waiting for its local root to end; then it is evicted "
        "(and counted).",
    ),
    Setting(
        "inbox_dir",
        ("OTEL_SENTRY_INBOX_DIR",),
        _parse_path,
        None,
        "a directory path",
        "Local inbox used when no DSN is set; list it with `otel-sentry inbox`.",
        default_doc="$XDG_DATA_HOME/otel-sentry/inbox (~/.local/share/otel-sentry/inbox)",
    ),
    Setting(
        "inbox_max_envelopes",
        ("OTEL_SENTRY_INBOX_MAX_ENVELOPES",),
        _positive_int,
        10_000,
        "a positive integer",
        "The inbox keeps at most this many envelopes, dropping the oldest.",
    ),
    Setting(
        "queue_max_events",
        ("OTEL_SENTRY_QUEUE_MAX_EVENTS",),
        _positive_int,
        1000,
        "a positive integer",
        "Bound of each delivery queue (errors and transactions are queued separately).",
    ),
    Setting(
        "queue_max_bytes",
        ("OTEL_SENTRY_QUEUE_MAX_BYTES",),
        _positive_int,
        32 * 1024 * 1024,
        "a positive integer (bytes)",
        "Memory bound of each delivery queue.",
        default_doc="33554432 (32 MiB)",
    ),
    Setting(
        "shutdown_timeout",
        ("OTEL_SENTRY_SHUTDOWN_TIMEOUT",),
        _positive_float,
        2.0,
        "seconds > 0",
        "How long shutdown waits to deliver what is queued; the rest is counted as dropped.",
    ),
    Setting(
        "request_timeout",
        ("OTEL_SENTRY_REQUEST_TIMEOUT",),
        _positive_float,
        5.0,
        "seconds > 0",
        "Timeout of one HTTP request to Sentry or Spotlight, as a whole (connect, upload, answer).",
    ),
    Setting(
        "spool_dir",
        ("OTEL_SENTRY_SPOOL_DIR",),
        _parse_path,
        None,
        "a writable directory path",
        "Keep envelopes that do not fit in memory, or are still queued at shutdown, on disk and send "
        "them later (also after a restart). Several processes may share it.",
        default_doc="unset (no spool: memory only)",
    ),
    Setting(
        "spool_max_bytes",
        ("OTEL_SENTRY_SPOOL_MAX_BYTES",),
        _positive_int,
        64 * 1024 * 1024,
        "a positive integer (bytes)",
        "Disk bound of the spool, per destination; what does not fit is counted as dropped.",
        default_doc="67108864 (64 MiB)",
    ),
    Setting(
        "strict",
        ("OTEL_SENTRY_STRICT",),
        _parse_bool,
        False,
        BOOL,
        "Raise at startup on an invalid setting instead of warning and falling back.",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Parsed settings; build with :func:`load_settings`."""

    dsn: Optional[str] = None
    environment: Optional[str] = "production"
    release: Optional[str] = None
    spotlight: Optional[str] = None
    debug: bool = False
    service_name: Optional[str] = None
    server_name: Optional[str] = None
    failed_status_codes: frozenset[int] = frozenset(range(500, 600))
    send_default_pii: bool = False
    include_local_variables: bool = True
    local_variables_all_frames: bool = False
    max_request_body_size: str = "medium"
    asgi_send_receive_spans: bool = False
    bypass_untraced_routes: bool = True
    bypass_unsampled_requests: bool = True
    include_source_context: bool = True
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    transactions: bool = True
    profiles_sample_rate: float = 0.0
    profile_session_sample_rate: float = 0.0
    auto_session_tracking: bool = True
    adopt_sentry_sdk: bool = True
    capture_background: bool = True
    log_event_level: Optional[int] = logging.ERROR
    log_events_in_ok_requests: bool = False
    log_breadcrumb_level: Optional[int] = logging.INFO
    debug_route: Optional[str] = None
    slow_request_seconds: float = 5.0
    api_key_hash_secret: Optional[str] = None
    scrub_keys: tuple[str, ...] = ()
    scrub_safe_keys: tuple[str, ...] = ()
    rules_file: Optional[Path] = None
    promotion: bool = False
    promotion_max_traces: int = 1000
    promotion_max_spans: int = 1000
    promotion_max_seconds: float = 60.0
    inbox_dir: Optional[Path] = None
    inbox_max_envelopes: int = 10_000
    queue_max_events: int = 1000
    queue_max_bytes: int = 32 * 1024 * 1024
    shutdown_timeout: float = 2.0
    request_timeout: float = 5.0
    spool_dir: Optional[Path] = None
    spool_max_bytes: int = 64 * 1024 * 1024
    strict: bool = False
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def resolved_inbox_dir(self) -> Path:
        return self.inbox_dir or _default_inbox_dir()

    @property
    def resolved_server_name(self) -> str:
        return self.server_name or socket.gethostname()


def parse_resource_attributes(raw: str | None) -> dict[str, str]:
    """Parse OTEL_RESOURCE_ATTRIBUTES (k=v pairs, percent-encoded values) leniently."""
    attributes: dict[str, str] = {}
    for pair in (raw or "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = urllib.parse.unquote(value.strip())
    return attributes


def mask_secret(raw: str) -> str:
    """A secret setting as a warning line may show it: a URL keeps its scheme, host and path (the
    part that is usually wrong) with any userinfo masked, also without a scheme; anything else
    is masked whole."""
    masked = mask_url_secrets(raw)
    scheme, sep, rest = masked.rpartition("://")
    if "@" in rest:  # "key:secret@host/1" without a scheme, or a userinfo the pattern missed
        rest = "[REDACTED]@" + rest.rpartition("@")[2]
    masked = f"{scheme}{sep}{rest}"
    if "@" not in masked and "://" not in masked and masked.strip():
        return "[REDACTED]"
    return re.sub(r"(?i)(sentry_key|sentry_secret|key|secret|token)=[^&\s]+", r"\1=[REDACTED]", masked)


def _display(setting: Setting, raw: str) -> str:
    return mask_secret(raw) if setting.secret else raw


def strict_requested(environ: Mapping[str, str] | None = None) -> bool:
    """OTEL_SENTRY_STRICT, read on its own: it decides how the other problems are reported."""
    try:
        return _parse_bool((os.environ if environ is None else environ).get("OTEL_SENTRY_STRICT", ""))
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read every setting from the environment; keyword overrides win (they come from configure())."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        if setting.name in overrides:
            continue
        for var in setting.env:
            raw = env.get(var)
            if raw is None:
                continue
            try:
                values[setting.name] = setting.parse(raw)
            except (ValueError, TypeError):
                used = setting.default_doc or repr(setting.default)
                problems.append(
                    f"invalid {var}={_display(setting, raw)!r}: expected {setting.accepted}; using {used}"
                )
            break
    resource = parse_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES"))
    if "environment" not in values:
        fallback = resource.get("deployment.environment.name") or resource.get("deployment.environment")
        if fallback:
            values["environment"] = fallback
    if "release" not in values and resource.get("service.version"):
        values["release"] = resource["service.version"]
    if "service_name" not in values and resource.get("service.name"):
        values["service_name"] = resource["service.name"]
    values.update(overrides)
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"unknown otel_sentry settings: {', '.join(unknown)}")
    settings = Settings(**values, problems=tuple(problems))
    if settings.strict and problems:
        raise ConfigurationError("otel_sentry: " + "; ".join(problems))
    for problem in problems:
        logger.warning("otel_sentry: %s", problem)
    return settings


def settings_reference_markdown() -> str:
    """The docs/configuration.md reference, generated from the table."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `otel_sentry/_settings.py` by `otel-sentry settings --markdown`; "
        "do not edit by hand.",
        "",
        "Every setting is an environment variable (`configure(...)` takes the same names as keyword "
        "arguments). An invalid value logs one warning line and falls back to the default; with "
        "`OTEL_SENTRY_STRICT=true` it raises at startup instead.",
        "",
        "| Variable | Default | Accepted | What it does |",
        "| --- | --- | --- | --- |",
    ]
    for setting in SETTINGS:
        default = setting.default_doc or ("unset" if setting.default in (None, ()) else str(setting.default))
        if isinstance(setting.default, bool):
            default = str(setting.default).lower()
        names = " / ".join(f"`{name}`" for name in setting.env)
        lines.append(f"| {names} | {default} | {setting.accepted} | {setting.doc} |")
    lines += [
        "",
        "## Standard OpenTelemetry variables the distro sets defaults for",
        "",
        "| Variable | Default under otel_sentry |",
        "| --- | --- |",
        "| `OTEL_TRACES_EXPORTER` | `sentry`, or `otlp,sentry` when an "
        "`OTEL_EXPORTER_OTLP_*ENDPOINT` is set |",
        "| `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER` | `none`, or `otlp` when an OTLP endpoint is set |",
        "| `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` |",
        "| `OTEL_TRACES_SAMPLER` | `otel_sentry` (the seeds' per-route rates, parent-based; "
        "`OTEL_TRACES_SAMPLER_ARG` adds `glob=rate` rules; docs/sampling.md) |",
        "| `OTEL_PROPAGATORS` | `tracecontext,baggage,sentry` |",
        "",
        "`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*` and the "
        "`OTEL_INSTRUMENTATION_*` variables keep their standard meaning.",
        "",
    ]
    return "\n".join(lines)
