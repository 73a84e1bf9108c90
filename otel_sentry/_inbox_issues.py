"""Group inbox events into issues the way Sentry roughly would, and render them as a table.

Apart from the store because it is pure: it works on event payloads, whatever holds them, and
changes with how issues are shown, not with how envelopes are kept on disk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "InboxIssue",
    "group_events",
    "normalize_message",
    "parse_timestamp",
    "plural",
    "render_issues_text",
    "summarize_event",
]

_MAX_VALUE_CHARS = 200
_DEFAULT_FINGERPRINT = "{{ default }}"


# ---------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class InboxIssue:
    """A group of events that Sentry would show as one issue."""

    fingerprint: str
    type: str
    value: str
    culprit: str
    count: int
    first_seen: datetime
    last_seen: datetime
    routes: tuple[str, ...] = ()
    level: str = "error"  # level of the most recent event
    handled: bool = True  # False if any event in the group was unhandled
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    last_event_id: str = ""
    last_trace_id: str | None = None

    @property
    def title(self) -> str:
        return f"{self.type}: {self.value}" if self.value else self.type

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "type": self.type,
            "value": self.value,
            "title": self.title,
            "culprit": self.culprit,
            "count": self.count,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "routes": list(self.routes),
            "level": self.level,
            "handled": self.handled,
            "tags": {k: list(v) for k, v in sorted(self.tags.items())},
            "last_event_id": self.last_event_id,
            "last_trace_id": self.last_trace_id,
        }


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_RFC3339 = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


def parse_timestamp(value: Any) -> datetime | None:
    """Parse a Sentry timestamp: float seconds since the epoch or an RFC 3339 string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            return None
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(float(value))
    except ValueError:
        pass
    m = _RFC3339.match(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, tz = m.groups()
    micros = int((frac or "0")[:6].ljust(6, "0"))
    tzinfo = timezone.utc
    if tz and tz not in ("Z", "z"):
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tzinfo = timezone(sign * offset)
    try:
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tzinfo
        )
    except ValueError:
        return None
    return dt.astimezone(timezone.utc)


_NORMALIZERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!\w)'[^'\n]*'(?!\w)"), "<str>"),
    (re.compile(r'"[^"\n]*"'), "<str>"),
    (re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<num>"),
)


def normalize_message(message: str) -> str:
    """Replace variable parts (quoted strings, UUIDs, hex ids, numbers) with placeholders."""
    text = message.strip()[:1000]
    for pattern, placeholder in _NORMALIZERS:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _first_line(value: Any) -> str:
    text = _as_str(value).strip()
    line = text.splitlines()[0] if text else ""
    return line[:_MAX_VALUE_CHARS]


def _exceptions(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    exc = event.get("exception")
    values: Any = exc.get("values") if isinstance(exc, dict) else exc
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, dict)]


def _message(event: Mapping[str, Any]) -> str:
    for key in ("logentry", "message"):
        msg = event.get(key)
        if isinstance(msg, dict):
            text = msg.get("formatted") or msg.get("message")
            if text:
                return _as_str(text)
        elif msg:
            return _as_str(msg)
    return ""


def _frame_culprit(frame: Mapping[str, Any]) -> str:
    module = _as_str(frame.get("module") or frame.get("filename") or frame.get("abs_path"))
    function = _as_str(frame.get("function"))
    if module and function:
        return f"{module} in {function}"
    return module or function


def _culprit(event: Mapping[str, Any], exc: Mapping[str, Any] | None) -> str:
    if exc is not None:
        stacktrace = exc.get("stacktrace")
        frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
        if isinstance(frames, list):
            frames = [f for f in frames if isinstance(f, dict)]
            # The last in_app frame; else the last frame not marked as library code (SDKs often
            # mark only library frames in_app=False and leave app frames unset); else the last frame.
            chosen = next((f for f in reversed(frames) if f.get("in_app") is True), None)
            if chosen is None:
                chosen = next((f for f in reversed(frames) if f.get("in_app") is not False), None)
            if chosen is None and frames:
                chosen = frames[-1]
            if chosen is not None:
                culprit = _frame_culprit(chosen)
                if culprit:
                    return culprit
    return _as_str(event.get("transaction") or event.get("culprit"))


def _tags(event: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    tags = event.get("tags")
    pairs: Iterable[Any]
    if isinstance(tags, dict):
        pairs = tags.items()
    elif isinstance(tags, list):
        pairs = tags
    else:
        return
    for pair in pairs:
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and pair[0] is not None:
            yield _as_str(pair[0]), _as_str(pair[1])


def _trace_id(event: Mapping[str, Any]) -> str | None:
    contexts = event.get("contexts")
    trace = contexts.get("trace") if isinstance(contexts, dict) else None
    trace_id = trace.get("trace_id") if isinstance(trace, dict) else None
    return _as_str(trace_id) or None


@dataclass
class _Summary:
    type: str
    value: str
    culprit: str
    key: tuple[str, ...]
    timestamp: datetime
    unhandled: bool


def summarize_event(event: Mapping[str, Any], fallback_time: datetime | None = None) -> _Summary:
    excs = _exceptions(event)
    outer = excs[-1] if excs else None
    if outer is not None:
        type_ = _as_str(outer.get("type")) or "Error"
        value = _first_line(outer.get("value"))
        if not value and not outer.get("type"):
            value = _first_line(_message(event))
    else:
        type_ = "Message"
        value = _first_line(_message(event))
    culprit = _culprit(event, outer)
    default = ("default", type_, culprit, normalize_message(value))
    fp = event.get("fingerprint")
    key: tuple[str, ...] = default
    if isinstance(fp, list) and fp and fp != [_DEFAULT_FINGERPRINT]:
        parts: list[str] = ["custom"]
        for part in fp:
            if part == _DEFAULT_FINGERPRINT:
                parts.extend(default)
            else:
                parts.append(_as_str(part))
        key = tuple(parts)
    timestamp = parse_timestamp(event.get("timestamp")) or fallback_time or datetime.now(timezone.utc)
    unhandled = any(
        isinstance(e.get("mechanism"), dict) and e["mechanism"].get("handled") is False for e in excs
    )
    return _Summary(type_, value, culprit, key, timestamp, unhandled)


def _fingerprint_hex(key: tuple[str, ...]) -> str:
    return hashlib.sha1("\x1f".join(key).encode("utf-8", "replace")).hexdigest()[:12]


def group_events(events: Iterable[tuple[Mapping[str, Any], datetime | None]]) -> list[InboxIssue]:
    """Group ``(event, fallback_time)`` pairs into issues, most recently seen first."""
    groups: dict[tuple[str, ...], list[tuple[_Summary, Mapping[str, Any]]]] = {}
    for event, fallback in events:
        summary = summarize_event(event, fallback)
        groups.setdefault(summary.key, []).append((summary, event))
    issues: list[InboxIssue] = []
    for key, members in groups.items():
        # Stable sort: ties on timestamp keep storage (write) order.
        members.sort(key=lambda m: m[0].timestamp)
        last_summary, last_event = members[-1]
        routes = sorted({_as_str(e.get("transaction")) for _, e in members if e.get("transaction")})
        tags: dict[str, set[str]] = {}
        for _, e in members:
            for k, v in _tags(e):
                tags.setdefault(k, set()).add(v)
        last_trace = next((t for _, e in reversed(members) if (t := _trace_id(e))), None)
        issues.append(
            InboxIssue(
                fingerprint=_fingerprint_hex(key),
                type=last_summary.type,
                value=last_summary.value,
                culprit=last_summary.culprit,
                count=len(members),
                first_seen=members[0][0].timestamp,
                last_seen=last_summary.timestamp,
                routes=tuple(routes),
                level=_as_str(last_event.get("level")) or "error",
                handled=not any(s.unhandled for s, _ in members),
                tags={k: tuple(sorted(v)) for k, v in sorted(tags.items())},
                last_event_id=_as_str(last_event.get("event_id")),
                last_trace_id=last_trace,
            )
        )
    issues.sort(key=lambda i: (i.last_seen, i.count, i.fingerprint), reverse=True)
    return issues


# ---------------------------------------------------------------------------- rendering


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _ago(dt: datetime, now: datetime) -> str:
    seconds = (now - dt).total_seconds()
    if seconds < -1 or seconds >= 30 * 86400:
        return _iso(dt.replace(microsecond=0))
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _routes_cell(routes: tuple[str, ...]) -> str:
    if not routes:
        return "-"
    if len(routes) == 1:
        return routes[0]
    return f"{routes[0]} (+{len(routes) - 1})"


def render_issues_text(
    issues: list[InboxIssue],
    *,
    directory: Path,
    transactions: int,
    skipped: int = 0,
    now: datetime | None = None,
) -> str:
    """A human-readable table of issues with a summary footer."""
    lines: list[str] = []
    note = f" ({plural(skipped, 'unreadable file')} skipped)" if skipped else ""
    if not issues:
        lines.append(f"No errors captured yet. The local inbox is at {directory}")
        lines.append(
            "It fills when your app reports an error and no Sentry DSN is configured; "
            "trigger one and run this again."
        )
        if transactions or skipped:
            lines.append(f"{plural(transactions, 'transaction')} recorded{note}.")
        return "\n".join(lines) + "\n"
    now = now or datetime.now(timezone.utc)
    rows = [
        (
            str(i.count),
            _clip(i.title + ("" if i.handled else " [unhandled]"), 70),
            _clip(i.culprit or "-", 45),
            _clip(_routes_cell(i.routes), 40),
            _ago(i.last_seen, now),
        )
        for i in issues
    ]
    header = ("COUNT", "ISSUE", "CULPRIT", "ROUTE", "LAST SEEN")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].rjust(widths[0])] + [row[c].ljust(widths[c]) for c in range(1, len(row))]
        lines.append("  ".join(cells).rstrip())
    events = sum(i.count for i in issues)
    lines.append("")
    lines.append(
        f"{plural(events, 'event')} in {plural(len(issues), 'issue')}, "
        f"{plural(transactions, 'transaction')} — {directory}{note}"
    )
    return "\n".join(lines) + "\n"
