"""Local on-disk inbox for Sentry envelopes.

When no Sentry DSN is configured, envelopes are stored here instead of being POSTed, so a
demo works on a fresh machine with no account. ``otel-sentry inbox`` lists what the inbox
holds, grouped into issues by :mod:`._inbox_issues`.

Layout: one file per envelope, ``<time_ns>-<pid>-<random>.envelope`` (``time_ns`` is
zero-padded, so lexical order is time order across processes). Files are written to a
temporary dot-file in the same directory and moved into place with :func:`os.replace`, so
readers never see a partial envelope, even with several worker processes writing at once.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from sentry_sdk.envelope import Envelope, Item

# Grouping and rendering live in ._inbox_issues; what callers imported from here stays importable.
from ._inbox_issues import InboxIssue, group_events, plural, render_issues_text
from ._inbox_issues import normalize_message as normalize_message
from ._inbox_issues import parse_timestamp as parse_timestamp

__all__ = ["Inbox", "InboxIssue", "inbox_command", "render_issues_text"]

_SUFFIX = ".envelope"
_TMP_PREFIX = ".tmp-"
_TMP_SUFFIX = ".part"
# Temp files older than this were left behind by a writer that died mid-write.
_STALE_TMP_SECONDS = 3600.0


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
            stream.write(f"Cleared: removed {plural(removed, 'envelope')} from {inbox.directory}\n")
    return 0
