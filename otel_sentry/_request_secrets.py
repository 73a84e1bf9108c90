"""Secrets a request carried, replaced wherever they reappear, under any name and in any encoding.

Name lists and value patterns always miss the next variable (``auth_string = "admin:<password>"``,
``creds`` holding the base64 form). The request itself says what its secrets are: the Authorization
header (a bearer token; for Basic the base64 form, the decoded ``user:password`` and the password),
cookies, API-key headers, sensitive query parameters, and body fields under sensitive names (learned
by the body tee as the app reads its body). Those values are remembered, in memory only, and every
string that leaves the process for that request is passed through one regex built from all their
encoded forms (raw, URL-encoded, JSON/repr-escaped, base64 at any alignment, hex).

Reaching every exit: events built in the request (or its background work, whose contexts are copies)
find the secrets through a context variable; spans and logs are exported later, from the batch
processors' threads, so the secrets are also registered under the request's trace id. A registry entry
is *held* while the request runs and while any span started in its context (background work too) is
open, then *lingers* for ``LINGER_SECONDS`` (covering the batch delay, the export timeout and tail
promotion's hold), then is forgotten. The registry holds at most ``MAX_TRACES`` entries; past that the
oldest released entry is evicted and counted. Requests without credentials create nothing: the cost
for them is one context-variable read per span start and end.

Values shorter than ``MIN_LENGTH`` characters are not matched on their own: a 4-character password
such as ``1234`` or ``test`` would also replace years, ports and words in every other string of the
request. Six is the shortest value matched, the floor the issue set: every common password-policy
minimum and every real API key or token is at least that long.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import copy
import dataclasses
import functools
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status, get_current_span

from ._redact import REDACTED, is_sensitive_header, is_sensitive_name
from ._span_copy import copy_span

try:  # opentelemetry-sdk >= 1.39 names
    from opentelemetry.sdk._logs.export import LogRecordExporter as _LogExporterBase
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import LogExporter as _LogExporterBase  # type: ignore[attr-defined,no-redef]

MIN_LENGTH = 6
MAX_VALUES = 32  # per request: a request with more credentials than this is not a real client
MAX_VALUE_LENGTH = 4096  # a JWT with many claims fits; longer values are truncated to this prefix
MAX_TRACES = 16_384  # ~1 KB each: at 1,000 credentialed requests/s an evicted entry is 16 s old
MATCHER_CACHE = 256  # compiled matchers kept for the credentials seen most recently
LINGER_SECONDS = 120.0
_MAX_OPEN_SPANS = 1024  # per entry; spans past this are not tracked (the linger still covers them)
_MIN_BASE64_CORE = 8  # an unaligned base64 fragment shorter than this would match random base64 text

counters: Counter[str] = Counter()


def _escapes(text: str) -> set[str]:
    """text as it appears inside a JSON string or a Python repr, and inside one of those of either
    (a repr of a JSON document in a frame's locals, a JSON document logged as a string)."""

    def once(value: str) -> set[str]:
        return {
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            repr(value)[1:-1],
            repr(value + "\"'")[1:-4],  # inside a bigger repr holding both quotes: ' is escaped
        }

    first = once(text)
    return {text} | first | set().union(*(once(f) for f in first))


def _lower_percent(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _base64_cores(data: bytes) -> set[str]:
    """The characters any base64 text containing ``data`` holds, at each of the 3 byte alignments."""
    found: set[str] = set()
    full = base64.b64encode(data).decode()
    found.update((full, full.rstrip("=")))
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = -(-8 * offset // 6)  # characters that also hold bits of the bytes before
        end = 8 * (offset + len(data)) // 6  # characters made of this data's bits only
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64_CORE:
            found.add(core)
    return found | {f.replace("+", "-").replace("/", "_") for f in found}


def forms(value: str) -> set[str]:
    """Every form of value the matcher replaces (see the module docstring)."""
    raw = value.encode("utf-8", "surrogatepass")
    url = {
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote(value),
        urllib.parse.quote_plus(value, safe=""),
        urllib.parse.quote_plus(value),
    }
    url |= {_lower_percent(u) for u in url}
    found: set[str] = set(_escapes(value)) | url | _base64_cores(raw)
    found.update((raw.hex(), raw.hex().upper()))
    return {f for f in found if len(f) >= MIN_LENGTH}


@functools.lru_cache(maxsize=MATCHER_CACHE)
def _matcher(values: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    """The compiled matcher of a set of values. Cached: a client sends the same API key or token on
    every request, and building one costs a few hundred microseconds (bench/request_secrets.py)."""
    every = set().union(*(forms(v) for v in values))
    # longest first: where forms overlap, the whole of the longer one is replaced
    ordered = sorted(every, key=lambda f: (-len(f), f))
    counters["request_secrets.matchers_built"] += 1
    return re.compile("|".join(re.escape(f) for f in ordered)), frozenset(v for v in values if v.isdigit())


class RequestSecrets:
    """The secret values of one request and the matcher of their forms, built once when first used."""

    __slots__ = ("_numbers", "_pattern", "trace_ids", "values")

    def __init__(self) -> None:
        self.values: list[str] = []
        self.trace_ids: set[int] = set()
        self._pattern: Optional[re.Pattern[str]] = None
        self._numbers: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.values)

    def add(self, value: Any) -> None:
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return
        value = value.strip()[:MAX_VALUE_LENGTH]
        if len(value) < MIN_LENGTH or value in self.values or value == REDACTED:
            return
        if len(self.values) >= MAX_VALUES:
            counters["request_secrets.values_over_limit"] += 1
            return
        self.values.append(value)
        self._pattern = None  # a body field learned after the matcher was built: build it again

    def pattern(self) -> Optional[re.Pattern[str]]:
        if self._pattern is None and self.values:
            self._pattern, self._numbers = _matcher(tuple(self.values))
        return self._pattern

    def forget_matcher(self) -> None:
        """Drop this request's reference to its matcher (the cache may keep it): a lingering entry
        then holds only its values."""
        self._pattern = None

    def redact_text(self, text: str) -> str:
        pattern = self.pattern()
        return text if pattern is None else pattern.sub(REDACTED, text)

    def redact(self, value: Any, depth: int = 0) -> Any:
        """value (JSON-like data) with every form replaced; the same object when nothing was."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, bool) or depth > 32:
            return value
        if isinstance(value, int):
            self.pattern()
            return REDACTED if str(value) in self._numbers else value
        if isinstance(value, dict):
            changed = False
            result: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.redact_text(key) if isinstance(key, str) else key
                new_item = self.redact(item, depth + 1)
                changed = changed or new_key is not key or new_item is not item
                result[new_key] = new_item
            return result if changed else value
        if isinstance(value, (list, tuple)):
            items = [self.redact(item, depth + 1) for item in value]
            if all(new is old for new, old in zip(items, value)):
                return value
            return type(value)(items) if isinstance(value, tuple) else items
        return value


# -- what a request carries ------------------------------------------------------------------------
def _add_authorization(secrets: RequestSecrets, header: str) -> None:
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        secrets.add(scheme)  # a bare token
        return
    secrets.add(credentials)
    if scheme.lower() != "basic":
        return
    try:
        decoded = base64.b64decode(credentials + "=" * (-len(credentials) % 4), validate=True)
    except (binascii.Error, ValueError):
        return
    text = decoded.decode("utf-8", "replace")
    secrets.add(text)
    secrets.add(text.partition(":")[2])


def _add_cookies(secrets: RequestSecrets, header: str) -> None:
    for part in header.split(";"):
        value = part.partition("=")[2].strip().strip('"')
        secrets.add(value)
        unquoted = urllib.parse.unquote(value)
        if unquoted != value:
            secrets.add(unquoted)


_credential_headers: dict[bytes, bool] = {}  # raw header name -> carries a credential (bounded)
# A query string is parsed only when it holds one of these (most hold none).
_QUERY_WORDS = (b"pass", b"pwd", b"secret", b"token", b"key", b"auth", b"sig", b"session", b"cred", b"code")


def _query_may_carry(query: Any) -> bool:
    if not isinstance(query, bytes):
        return bool(query)
    lowered = query.lower()
    return any(word in lowered for word in _QUERY_WORDS)


def _may_carry_credentials(scope: Mapping[str, Any]) -> bool:
    """The fast test every request pays: a cached lookup per header name, substring tests on the
    query string; nothing is allocated."""
    for raw_name, _ in scope.get("headers") or ():
        if _is_credential_header(raw_name):
            return True
    query = scope.get("query_string")
    return bool(query) and _query_may_carry(query)


def _is_credential_header(raw_name: bytes) -> bool:
    known = _credential_headers.get(raw_name)
    if known is None:
        name = raw_name.decode("latin-1").lower()
        known = name not in ("host", "content-type", "content-length") and is_sensitive_header(name)
        if len(_credential_headers) < 4096:
            _credential_headers[raw_name] = known
    return known


def collect(scope: Mapping[str, Any], secrets: Optional[RequestSecrets] = None) -> RequestSecrets:
    """The secrets in the request's headers and query string (empty when there are none)."""
    secrets = secrets if secrets is not None else RequestSecrets()
    for raw_name, raw_value in scope.get("headers") or ():
        if not _is_credential_header(raw_name):
            continue
        name = raw_name.decode("latin-1").lower()
        if name == "authorization" or name == "proxy-authorization":
            _add_authorization(secrets, raw_value.decode("latin-1"))
        elif name == "cookie":
            _add_cookies(secrets, raw_value.decode("latin-1"))
        else:
            secrets.add(raw_value)
    query = scope.get("query_string") or b""
    if query and _query_may_carry(query):
        text = query.decode("latin-1") if isinstance(query, bytes) else str(query)
        for key, value in urllib.parse.parse_qsl(text, keep_blank_values=False):
            if is_sensitive_name(key):
                secrets.add(value)
    return secrets


def learn_fields(secrets: RequestSecrets, data: Any, depth: int = 0) -> None:
    """Add the values under sensitive names in a parsed JSON or form body."""
    if depth > 16:
        return
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(key, str) and is_sensitive_name(key) and not isinstance(value, (dict, list)):
                secrets.add(value)
            elif isinstance(value, (dict, list)):
                learn_fields(secrets, value, depth + 1)
    elif isinstance(data, list):
        for item in data[:1000]:
            learn_fields(secrets, item, depth + 1)


# -- where the secrets are found again ------------------------------------------------------------
_current: contextvars.ContextVar[Optional[RequestSecrets]] = contextvars.ContextVar(
    "otel_sentry_request_secrets", default=None
)


class _Entry:
    __slots__ = ("holds", "open_spans", "released_at", "secrets")

    def __init__(self, secrets: RequestSecrets) -> None:
        self.secrets = secrets
        self.holds = 0
        self.open_spans: set[int] = set()
        self.released_at = 0.0


class _Registry:
    """trace id -> the secrets of the request(s) of that trace in this process; bounded (see above)."""

    def __init__(self, max_traces: int = MAX_TRACES, linger: float = LINGER_SECONDS) -> None:
        self.max_traces = max_traces
        self.linger = linger
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def hold(self, trace_id: int, secrets: RequestSecrets, span_id: Optional[int] = None) -> None:
        with self._lock:
            entry = self._entries.get(trace_id)
            if entry is None:
                self._make_room()
                entry = self._entries[trace_id] = _Entry(secrets)
            elif entry.secrets is not secrets:
                for value in secrets.values:  # two requests of one trace in this process
                    entry.secrets.add(value)
            if span_id is None:
                entry.holds += 1
            elif len(entry.open_spans) < _MAX_OPEN_SPANS:
                entry.open_spans.add(span_id)
            secrets.trace_ids.add(trace_id)

    def release(self, trace_id: int, span_id: Optional[int] = None) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(trace_id)
            if entry is not None:
                if span_id is None:
                    entry.holds = max(0, entry.holds - 1)
                else:
                    entry.open_spans.discard(span_id)
                entry.released_at = now
                if not self._held(entry):
                    entry.secrets.forget_matcher()
            if now >= self._next_sweep:
                self._next_sweep = now + 1.0
                self._sweep(now)

    def get(self, trace_id: int) -> Optional[RequestSecrets]:
        entry = self._entries.get(trace_id)
        return entry.secrets if entry is not None else None

    def _held(self, entry: _Entry) -> bool:
        return entry.holds > 0 or bool(entry.open_spans)

    def _sweep(self, now: float) -> None:
        expired = [
            t for t, e in self._entries.items() if not self._held(e) and now - e.released_at > self.linger
        ]
        for trace_id in expired:
            del self._entries[trace_id]

    def _make_room(self) -> None:
        if len(self._entries) < self.max_traces:
            return
        now = time.monotonic()
        if now >= self._next_sweep:  # a full sweep at most once a second, never per request
            self._next_sweep = now + 1.0
            self._sweep(now)
            if len(self._entries) < self.max_traces:
                return
        # insertion order is age: the oldest released entry goes, else the oldest of all
        victim = next((t for t, e in self._entries.items() if not self._held(e)), None)
        if victim is None:
            victim = next(iter(self._entries))
        del self._entries[victim]
        counters["request_secrets.evicted"] += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


registry = _Registry()


def start_request(scope: Mapping[str, Any], body_expected: bool = False) -> Optional[contextvars.Token[Any]]:
    """Called when a request starts: remember its secrets (None, and nothing done, when it has none
    and no body that could carry some)."""
    if not body_expected and not _may_carry_credentials(scope):
        return None
    secrets = collect(scope)
    if not secrets and not body_expected:
        return None
    span_context = get_current_span().get_span_context()
    if span_context.is_valid:
        registry.hold(span_context.trace_id, secrets)
    return _current.set(secrets)


def end_request(token: Optional[contextvars.Token[Any]]) -> None:
    """Called when the request's events are out: its spans and logs keep the registry entry."""
    if token is None:
        return
    secrets = _current.get()
    _current.reset(token)
    for trace_id in list(secrets.trace_ids if secrets is not None else ()):
        registry.release(trace_id)


def learn_body(data: Any) -> None:
    """The body tee's parsed JSON or form body: its sensitive fields become secrets of the request."""
    secrets = _current.get()
    if secrets is not None:
        learn_fields(secrets, data)


def current() -> Optional[RequestSecrets]:
    return _current.get()


def for_trace(trace_id: Any) -> Optional[RequestSecrets]:
    """The secrets of the request of that trace (int or 32-hex id), if any are remembered."""
    if not registry._entries:  # no credentialed request recently: nothing to look up
        return None
    if isinstance(trace_id, str):
        try:
            trace_id = int(trace_id, 16)
        except ValueError:
            return None
    if not isinstance(trace_id, int):
        return None
    secrets = registry.get(trace_id)
    return secrets if secrets else None


class RequestSecretsProcessor(SpanProcessor):
    """Spans started in a credentialed request's context (background work too) hold its entry open
    until they end, so their export, later, still finds the secrets."""

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        secrets = _current.get()
        if secrets is not None:
            context = span.get_span_context()
            registry.hold(context.trace_id, secrets, context.span_id)

    def on_end(self, span: ReadableSpan) -> None:
        if _current.get() is None and not registry._entries:
            return
        context = span.get_span_context()
        if context is not None:
            registry.release(context.trace_id, context.span_id)


# -- redaction at each exit -------------------------------------------------------------------------
def _redact_events(span: ReadableSpan, secrets: RequestSecrets) -> Optional[list[Event]]:
    events: Optional[list[Event]] = None
    for index, event in enumerate(span.events):
        original = dict(event.attributes or {})
        attributes = secrets.redact(original)
        name = secrets.redact_text(event.name)
        if attributes is not original or name is not event.name:
            events = events if events is not None else list(span.events)
            events[index] = Event(name, attributes, event.timestamp)
    return events


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """span with its request's secrets replaced in name, attributes, events and status; the same
    span when its trace has none remembered or nothing matched."""
    context = span.get_span_context()
    secrets = for_trace(context.trace_id) if context is not None else None
    if secrets is None:
        return span
    original = dict(span.attributes or {})
    attributes = secrets.redact(original)
    events = _redact_events(span, secrets)
    name = secrets.redact_text(span.name)
    status = span.status
    if status.description:
        description = secrets.redact_text(status.description)
        if description is not status.description:
            status = Status(status.status_code, description)
    if attributes is original and events is None and name is span.name and status is span.status:
        return span
    counters["request_secrets.spans_redacted"] += 1
    return copy_span(
        span,
        name=name,
        context=context,
        attributes=attributes,
        events=events if events is not None else span.events,
        status=status,
    )


def redact_spans(spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
    if not registry._entries:
        return spans
    return [redact_span(span) for span in spans]


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """A Sentry event with the secrets of its request (current, or of its trace) replaced."""
    secrets = _current.get() or for_trace(((event.get("contexts") or {}).get("trace") or {}).get("trace_id"))
    if not secrets:
        return event
    redacted: dict[str, Any] = secrets.redact(event)
    if redacted is not event:
        counters["request_secrets.events_redacted"] += 1
    return redacted


def redact_log_record(record: Any) -> Any:
    """An OTel log record (``ReadableLogRecord``) with its request's secrets replaced in body and
    attributes; the same record when its trace has none remembered or nothing matched."""
    log: Any = getattr(record, "log_record", None)
    secrets = for_trace(getattr(log, "trace_id", None)) if log is not None else None
    if secrets is None:
        return record
    body = secrets.redact(log.body)
    attributes = secrets.redact(dict(log.attributes)) if log.attributes else log.attributes
    if body is log.body and (not log.attributes or attributes == dict(log.attributes)):
        return record
    clean = copy.copy(log)  # the record object is shared by every processor: never change it
    clean.body = body
    clean.attributes = attributes
    counters["request_secrets.logs_redacted"] += 1
    return dataclasses.replace(record, log_record=clean)


class RedactingLogExporter(_LogExporterBase):  # type: ignore[misc]
    """In front of each log exporter (OTLP, console, sentry): the request's secrets replaced."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter

    def export(self, batch: Sequence[Any]) -> Any:
        if registry._entries:
            batch = [redact_log_record(record) for record in batch]
        return self.exporter.export(batch)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)
