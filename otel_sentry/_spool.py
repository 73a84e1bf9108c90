"""The optional on-disk spool: envelopes that do not fit in memory, or are still queued at shutdown.

Opt-in (``OTEL_SENTRY_SPOOL_DIR``), bounded in bytes (``OTEL_SENTRY_SPOOL_MAX_BYTES``), one
subdirectory per destination (named by a hash of its URL, never the DSN's key). One file per envelope,
written to a temporary name and renamed, so a reader never sees half an envelope. Several processes
(workers of one app) may share a spool: a process claims a file by renaming it to a name carrying its
pid before sending it, so exactly one of them sends it; a claim left by a process that died is
released again. Files are deleted only once delivered or counted as dropped, so a restart loses
nothing that fit. Pending client reports are kept here too.

sentry-sdk has no spool at all (its queue lives in memory and dies with the process).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ._settings import Settings

logger = logging.getLogger("otel_sentry")

_SUFFIX = ".envelope"
_REPORTS = "client-reports"
_RESCAN_SECONDS = 5.0


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class Spool:
    """Bounded store of serialized envelopes for one destination; see the module docstring."""

    def __init__(self, root: Path, destination_url: str, *, max_bytes: int) -> None:
        key = hashlib.sha256(destination_url.encode()).hexdigest()[:16]
        self.directory = Path(root) / key
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = self.directory / f".probe-{os.getpid()}"
        probe.write_bytes(b"")  # fail now, at startup, if the directory is not writable
        probe.unlink()
        self._init_state()
        self._release_dead_claims()
        self._scan()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._index: dict[str, deque[str]] = {}
        self._bytes = 0
        self._seq = itertools.count()
        self._last_scan = 0.0

    def after_fork(self) -> None:
        """The child starts with an empty view: what is on disk now is the parent's to send."""
        self._init_state()
        self._last_scan = time.monotonic()

    # -- writing ---------------------------------------------------------------------------------
    def put(self, body: bytes, category: str) -> bool:
        """Store one envelope; False when it does not fit or cannot be written (the caller counts it)."""
        with self._lock:
            if self._bytes + len(body) > self.max_bytes:
                return False
            name = f"{category}-{time.time_ns():020d}-{os.getpid()}-{next(self._seq)}{_SUFFIX}"
            self._bytes += len(body)
        try:
            temporary = self.directory / f".{name}.tmp"
            temporary.write_bytes(body)
            os.replace(temporary, self.directory / name)
        except OSError as exc:
            with self._lock:
                self._bytes -= len(body)
            logger.warning("otel_sentry: cannot write to the spool %s: %s", self.directory, exc)
            return False
        with self._lock:
            self._index.setdefault(category, deque()).append(name)
        return True

    # -- reading -----------------------------------------------------------------------------------
    def has(self, category: str) -> bool:
        with self._lock:
            return bool(self._index.get(category))

    def pending(self) -> int:
        with self._lock:
            return sum(len(names) for names in self._index.values())

    def claim(self, category: str) -> Optional[tuple[Path, bytes]]:
        """Take the oldest envelope of category for this process: (claimed path, body), or None."""
        while True:
            with self._lock:
                names = self._index.get(category)
                if not names:
                    return None
                name = names.popleft()
            source = self.directory / name
            claimed = self.directory / f"{name}.{os.getpid()}.claim"
            try:
                os.rename(source, claimed)  # atomic: exactly one process wins
            except OSError:
                continue  # another process took it, or it vanished
            try:
                return claimed, claimed.read_bytes()
            except OSError:
                self.release(claimed)  # not ours to lose: leave it for a later attempt
                return None

    def done(self, claimed: Path) -> None:
        """Delivered or counted as dropped: forget it."""
        with contextlib.suppress(OSError):
            size = claimed.stat().st_size
            claimed.unlink()
            with self._lock:
                self._bytes = max(0, self._bytes - size)

    def release(self, claimed: Path) -> bool:
        """Give a claimed envelope back (still undelivered at shutdown)."""
        original = claimed.name.rsplit(".", 2)[0]
        try:
            os.rename(claimed, self.directory / original)
        except OSError:
            return False
        return True

    def rescan_due(self) -> bool:
        return time.monotonic() - self._last_scan >= _RESCAN_SECONDS

    def rescan(self) -> None:
        """Pick up envelopes other processes left (they may have exited since)."""
        self._release_dead_claims()
        self._scan()

    def _scan(self) -> None:
        index: dict[str, list[str]] = {}
        total = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                with contextlib.suppress(OSError):
                    if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
                        index.setdefault(entry.name.split("-", 1)[0], []).append(entry.name)
                        total += entry.stat().st_size
                    elif entry.name.endswith(".claim"):
                        total += entry.stat().st_size
        with self._lock:
            self._index = {cat: deque(sorted(names)) for cat, names in index.items()}
            self._bytes = total
            self._last_scan = time.monotonic()

    def _release_dead_claims(self) -> None:
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if not entry.name.endswith(".claim"):
                    continue
                with contextlib.suppress(ValueError, OSError):
                    pid = int(entry.name.rsplit(".", 2)[1])
                    if not _pid_alive(pid):
                        self.release(Path(entry.path))

    # -- client reports --------------------------------------------------------------------------
    def save_reports(self, discards: Counter[tuple[str, str]]) -> None:
        if not discards:
            return
        rows = [[reason, category, n] for (reason, category), n in discards.items() if n > 0]
        path = self.directory / f"{_REPORTS}-{time.time_ns()}-{os.getpid()}.json"
        try:
            path.with_suffix(".tmp").write_text(json.dumps(rows))
            os.replace(path.with_suffix(".tmp"), path)
        except OSError as exc:
            logger.warning("otel_sentry: cannot write to the spool %s: %s", self.directory, exc)

    def load_reports(self) -> Counter[tuple[str, str]]:
        """Client reports saved by earlier runs; each file is read by exactly one process."""
        total: Counter[tuple[str, str]] = Counter()
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                if not (entry.name.startswith(_REPORTS) and entry.name.endswith(".json")):
                    continue
                claimed = Path(f"{entry.path}.{os.getpid()}.reading")
                try:
                    os.rename(entry.path, claimed)
                    rows = json.loads(claimed.read_text())
                    claimed.unlink()
                    for reason, category, quantity in rows:
                        total[(str(reason), str(category))] += int(quantity)
                except (OSError, ValueError, TypeError) as exc:
                    logger.warning("otel_sentry: skipping unreadable spool file %s: %s", entry.path, exc)
        return total


def open_spool(settings: Settings, destination_url: str) -> Optional[Spool]:
    """The spool the settings ask for, or None. An unusable directory is one clear line and no spool
    (delivery still works, from memory), or a startup error in strict mode."""
    if settings.spool_dir is None:
        return None
    try:
        return Spool(settings.spool_dir, destination_url, max_bytes=settings.spool_max_bytes)
    except OSError as exc:
        problem = (
            f"invalid OTEL_SENTRY_SPOOL_DIR={str(settings.spool_dir)!r}: {exc.strerror or exc}; expected a "
            "writable directory path; using no spool (envelopes are kept in memory only)"
        )
        if settings.strict:
            from ._settings import ConfigurationError

            raise ConfigurationError(f"otel_sentry: {problem}") from None
        logger.warning("otel_sentry: %s", problem)
        return None
