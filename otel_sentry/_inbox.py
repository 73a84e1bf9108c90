"""Local on-disk inbox for Sentry envelopes.

When no Sentry DSN is configured, envelopes are stored here instead of being POSTed, so a
demo works on a fresh machine with no account. ``otel-sentry inbox`` lists what the inbox
holds, grouped into issues the way Sentry would roughly group them.

Layout: one file per envelope, ``<time_ns>-<pid>-<random>.envelope`` (``time_ns`` is
zero-padded, so lexical order is time order across processes). Files are written to a
temporary dot-file in the same directory and moved into place with :func:`os.replace`, so
readers never see a partial envelope, even with several worker processes writing at once.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from sentry_sdk.envelope import Envelope, Item

__all__ = ["Inbox", "InboxIssue", "inbox_command", "render_issues_text"]

_SUFFIX = ".envelope"
_TMP_PREFIX = ".tmp-"
_TMP_SUFFIX = ".part"
# Temp files older than this were left behind by a writer that died mid-write.
_STALE_TMP_SECONDS = 3600.0
_MAX_VALUE_CHARS = 200
_DEFAULT_FINGERPRINT = "{{ default }}"


class Inbox:
    """A directory of Sentry envelopes, safe for concurrent writers (threads and processes)."""

    def __init__(self, directory: str | os.PathLike[str], max_envelopes: int = 10_000) -> None:
        if max_envelopes < 1:
            raise ValueError("max_envelopes must be >= 1")
        self.directory: Path = Path(directory).expanduser()
        self.max_envelopes: int = max_envelopes
        #: Number of unreadable/corrupt files skipped by the most recent read.
        self.skipped_files: int = 0
        # Eviction bookkeeping. Instead of listing the directory on every write, keep an
        # estimate of the file count and re-list only when it goes over the limit or every
        # ``_scan_every`` writes (other processes write too, so our estimate drifts). When
        # over, prune down to a low-water mark so the next listing is again many writes away.
        slack = max_envelopes // 20
        self._low_water = max(1, max_envelopes - slack)
        self._scan_every = max(1, min(slack, 1000))
        self._count: int | None = None  # unknown until the first listing
        self._since_scan = 0
        self._scanning = False
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Inbox({str(self.directory)!r}, max_envelopes={self.max_envelopes})"

    # ------------------------------------------------------------------ writing

    def write(self, envelope: bytes) -> None:
        """Store one serialized envelope atomically. Raises :class:`OSError` on failure."""
        data = bytes(envelope)
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(6).hex()}{_SUFFIX}"
        try:
            self._write_atomic(name, data)
        except FileNotFoundError:
            # First use (or the directory was removed under us): create it and retry once.
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            self._write_atomic(name, data)
        self._after_write()

    def _write_atomic(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _state_lock(self) -> threading.Lock:
        pid = os.getpid()
        if pid != self._pid:
            # Forked child (e.g. a gunicorn worker): the parent's lock may have been held at fork time.
            self._pid = pid
            self._lock = threading.Lock()
            self._scanning = False
        return self._lock

    def _after_write(self) -> None:
        with self._state_lock():
            self._since_scan += 1
            if self._count is not None:
                self._count += 1
            due = (
                self._count is None
                or self._count > self.max_envelopes
                or self._since_scan >= self._scan_every
            )
            if not due or self._scanning:
                return
            self._scanning = True
        count: int | None = None
        try:
            count = self._prune()
        except OSError:
            # The envelope itself was stored; failing to evict is not a dropped event.
            count = None
        finally:
            with self._lock:
                self._scanning = False
                self._since_scan = 0
                self._count = count

    def _prune(self) -> int:
        """List the directory, evict the oldest envelopes if over the limit; return the count left."""
        names: list[str] = []
        now = time.time()
        with os.scandir(self.directory) as it:
            for entry in it:
                if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
                    names.append(entry.name)
                elif entry.name.startswith(_TMP_PREFIX) and entry.name.endswith(_TMP_SUFFIX):
                    _remove_if_stale(entry, now)
        if len(names) <= self.max_envelopes:
            return len(names)
        names.sort()
        excess = len(names) - self._low_water
        for name in names[:excess]:
            with contextlib.suppress(FileNotFoundError):  # another process may have evicted it
                os.unlink(self.directory / name)
        return self._low_water

    # ------------------------------------------------------------------ reading

    def _paths(self) -> list[Path]:
        try:
            with os.scandir(self.directory) as it:
                names = [e.name for e in it if e.name.endswith(_SUFFIX) and not e.name.startswith(".")]
        except FileNotFoundError:
            return []
        names.sort()
        return [self.directory / n for n in names]

    def _read(self, paths: list[Path] | None = None) -> list[tuple[Path, Envelope]]:
        out: list[tuple[Path, Envelope]] = []
        skipped = 0
        for path in self._paths() if paths is None else paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # evicted or cleared between listing and reading
            except OSError:
                skipped += 1
                continue
            envelope = _parse_envelope(data)
            if envelope is None:
                skipped += 1
                continue
            out.append((path, envelope))
        self.skipped_files = skipped
        return out

    def envelopes(self) -> list[Envelope]:
        """All readable envelopes, oldest first. Corrupt files are skipped (see ``skipped_files``)."""
        return [env for _, env in self._read()]

    def _payloads(self, item_type: str) -> Iterator[tuple[dict[str, Any], datetime]]:
        for path, envelope in self._read():
            written = _time_from_name(path.name)
            for item in envelope.items:
                if item.type == item_type:
                    payload = _item_json(item)
                    if payload is not None:
                        yield payload, written

    def events(self) -> list[dict[str, Any]]:
        """Payloads of items of type ``event``, oldest first."""
        return [p for p, _ in self._payloads("event")]

    def transactions(self) -> list[dict[str, Any]]:
        """Payloads of items of type ``transaction``, oldest first."""
        return [p for p, _ in self._payloads("transaction")]

    def issues(self) -> list[InboxIssue]:
        """Events grouped into issues, most recently seen first."""
        return group_events(self._payloads("event"))

    def clear(self) -> int:
        """Delete every envelope; return how many were removed."""
        return self._remove(self._paths())

    def _remove(self, paths: list[Path]) -> int:
        removed = 0
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
        now = time.time()
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    if entry.name.startswith(_TMP_PREFIX) and entry.name.endswith(_TMP_SUFFIX):
                        _remove_if_stale(entry, now)
        except FileNotFoundError:
            pass
        with self._state_lock():
            self._count = None  # recount on the next write
        return removed


def _remove_if_stale(entry: os.DirEntry[str], now: float) -> None:
    try:
        if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
            os.unlink(entry.path)
    except OSError:
        pass


def _parse_envelope(data: bytes) -> Envelope | None:
    if data[:2] == b"\x1f\x8b":  # tolerate gzip-compressed bodies (what transports POST)
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return None
    if not data.strip():
        return None
    try:
        envelope = Envelope.deserialize(data)
    except Exception:  # any parse failure means a corrupt file: skip it
        return None
    if not isinstance(envelope.headers, dict):
        return None
    for item in envelope.items:
        if not isinstance(item.headers, dict):
            return None
        if item.type in ("event", "transaction") and not isinstance(item.payload.json, dict):
            return None
    return envelope


def _item_json(item: Item) -> dict[str, Any] | None:
    payload = item.payload.json
    if payload is None:
        try:
            payload = json.loads(item.payload.get_bytes())
        except ValueError:
            return None
    return payload if isinstance(payload, dict) else None


def _time_from_name(name: str) -> datetime:
    head = name.split("-", 1)[0]
    try:
        return datetime.fromtimestamp(int(head) / 1e9, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return datetime.fromtimestamp(0, tz=timezone.utc)


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


def _plural(n: int, word: str) -> str:
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
    note = f" ({_plural(skipped, 'unreadable file')} skipped)" if skipped else ""
    if not issues:
        lines.append(f"No errors captured yet. The local inbox is at {directory}")
        lines.append(
            "It fills when your app reports an error and no Sentry DSN is configured; "
            "trigger one and run this again."
        )
        if transactions or skipped:
            lines.append(f"{_plural(transactions, 'transaction')} recorded{note}.")
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
        f"{_plural(events, 'event')} in {_plural(len(issues), 'issue')}, "
        f"{_plural(transactions, 'transaction')} — {directory}{note}"
    )
    return "\n".join(lines) + "\n"


def inbox_command(directory: Path, *, as_json: bool, clear: bool = False, out: TextIO | None = None) -> int:
    """What ``otel-sentry inbox [--json] [--clear]`` runs. Returns the process exit code.

    With ``clear``, the listing is printed first and then exactly the envelopes it covered are
    deleted (anything written meanwhile stays for the next run).
    """
    stream = out if out is not None else sys.stdout
    inbox = Inbox(directory)
    try:
        paths = inbox._paths()
        read = inbox._read(paths)
        skipped = inbox.skipped_files
        events: list[tuple[dict[str, Any], datetime]] = []
        transactions = 0
        for path, envelope in read:
            written = _time_from_name(path.name)
            for item in envelope.items:
                if item.type not in ("event", "transaction"):
                    continue
                payload = _item_json(item)
                if payload is None:
                    continue
                if item.type == "event":
                    events.append((payload, written))
                else:
                    transactions += 1
        issues = group_events(events)
        removed = inbox._remove(paths) if clear else None
    except OSError as exc:
        print(f"otel-sentry: cannot read inbox {inbox.directory}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        doc: dict[str, Any] = {
            "directory": str(inbox.directory),
            "issues": [i.to_json() for i in issues],
            "events": len(events),
            "transactions": transactions,
            "skipped": skipped,
        }
        if removed is not None:
            doc["removed"] = removed
        stream.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        stream.write(
            render_issues_text(issues, directory=inbox.directory, transactions=transactions, skipped=skipped)
        )
        if removed is not None:
            stream.write(f"Cleared: removed {_plural(removed, 'envelope')} from {inbox.directory}\n")
    return 0
