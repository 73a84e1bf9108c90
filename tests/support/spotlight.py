"""The real Spotlight sidecar (npm ``@spotlightjs/spotlight``, pinned in the repo's package.json).

Started as ``node_modules/.bin/spotlight server -p 0`` (the CLI's plain sidecar command; port 0 lets
it pick a free port, which it logs as ``Spotlight listening on <port>``). SDKs POST envelopes to
``http://127.0.0.1:<port>/stream``.

Reading back uses the sidecar's own HTTP API, the one its UI uses: ``GET /stream`` is a
Server-Sent-Events feed that first replays the sidecar's buffer (500 envelopes) and then follows
it; each ``application/x-sentry-envelope`` event carries the whole parsed envelope as JSON
``[headers, [[item_headers, payload], ...]]``. :meth:`Spotlight.tail` also runs the user-facing
``spotlight tail <types> -f json -p <port>``, which prints one summarized JSON line per item.

Spotlight reports its own telemetry to sentry.io with a hard-coded DSN and has no switch for it;
the subprocesses get ``https_proxy`` pointed at a closed loopback port so nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, cast

import httpx

from .apps import clean_env

REPO_ROOT = Path(__file__).resolve().parents[2]
SPOTLIGHT_BIN = REPO_ROOT / "node_modules" / ".bin" / "spotlight"
ENVELOPE_EVENT = "application/x-sentry-envelope"
# Port 9 (discard) on loopback is closed here; the CONNECT fails at once, locally.
_NO_PHONE_HOME = {"https_proxy": "http://127.0.0.1:9", "no_proxy": ""}

Envelope = Tuple[Dict[str, Any], List[Tuple[Dict[str, Any], Any]]]


def spotlight_bin() -> Path:
    """Path of the CLI; raises (never skips) when ``npm ci`` has not been run."""
    if not SPOTLIGHT_BIN.exists():
        raise RuntimeError(
            f"Spotlight CLI not found at {SPOTLIGHT_BIN}. Run `npm ci` in {REPO_ROOT} "
            "(installs the pinned @spotlightjs/spotlight from package-lock.json)."
        )
    return SPOTLIGHT_BIN


def _env() -> Dict[str, str]:
    # SENTRY_SPOTLIGHT etc. from the developer's shell would make the sidecar report into itself.
    return clean_env(_NO_PHONE_HOME)


class Spotlight:
    """A Spotlight sidecar subprocess plus a background SSE reader collecting what it received."""

    def __init__(self, ready_timeout: float = 30.0) -> None:
        self.ready_timeout = ready_timeout
        self.log_dir = Path(tempfile.mkdtemp(prefix="otel-sentry-spotlight-"))
        self.stdout_path = self.log_dir / "spotlight.stdout.log"
        self.stderr_path = self.log_dir / "spotlight.stderr.log"
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self._cond = threading.Condition(threading.RLock())
        self._envelopes: List[Envelope] = []
        self._reader: Optional[threading.Thread] = None
        self._reader_client: Optional[httpx.Client] = None
        self._reader_error: Optional[BaseException] = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("Spotlight is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Where SDKs send envelopes (``spotlight=`` in sentry_sdk.init, or SENTRY_SPOTLIGHT)."""
        return self.base_url + "/stream"

    def start(self) -> Spotlight:
        binary = spotlight_bin()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(binary), "server", "-p", "0"],
                cwd=REPO_ROOT,
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        try:
            self.port = self._wait_port()
            self._wait_health()
            self._start_reader()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_port(self) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        pattern = re.compile(r"Spotlight listening on (\d+)")
        while time.monotonic() < deadline:
            match = pattern.search(self._logs())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"spotlight exited with {self.proc.returncode}\n{self.output()}")
            time.sleep(0.05)
        raise TimeoutError(f"spotlight did not report its port in {self.ready_timeout}s\n{self.output()}")

    def _wait_health(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                if httpx.get(self.base_url + "/health", timeout=2.0).text == "OK":
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"spotlight /health not OK in {self.ready_timeout}s\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stopping.set()
        if self._reader_client is not None:
            with contextlib.suppress(Exception):
                self._reader_client.close()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def __enter__(self) -> Spotlight:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()
        if exc_type is not None:
            print(self.output())

    # -- SSE reader --------------------------------------------------------------------------
    def _start_reader(self) -> None:
        connected = threading.Event()
        self._reader_client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._reader = threading.Thread(
            target=self._read_stream, args=(self._reader_client, connected), name="spotlight-sse", daemon=True
        )
        self._reader.start()
        if not connected.wait(10.0):
            raise TimeoutError(f"could not subscribe to {self.url}: {self._reader_error!r}\n{self.output()}")

    def _read_stream(self, client: httpx.Client, connected: threading.Event) -> None:
        try:
            with client.stream("GET", self.url, params={"client": "otel-sentry-tests"}) as response:
                response.raise_for_status()
                connected.set()
                event, data = "", cast(List[str], [])
                for line in response.iter_lines():
                    if line == "":
                        if event == ENVELOPE_EVENT and data:
                            self._add(json.loads("\n".join(data)))
                        event, data = "", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
        except Exception as exc:
            if not self._stopping.is_set():
                self._reader_error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def _add(self, parsed: Any) -> None:
        headers, items = parsed
        envelope: Envelope = (headers, [(h, p) for h, p in items])
        with self._cond:
            self._envelopes.append(envelope)
            self._cond.notify_all()

    # -- what arrived ------------------------------------------------------------------------
    def envelopes(self) -> List[Envelope]:
        with self._cond:
            return list(self._envelopes)

    def items(self, item_type: str) -> List[Any]:
        with self._cond:
            return [p for _, items in self._envelopes for h, p in items if h.get("type") == item_type]

    def events(self) -> List[Dict[str, Any]]:
        return self.items("event")

    def transactions(self) -> List[Dict[str, Any]]:
        return self.items("transaction")

    def wait_for(self, predicate: Callable[[Spotlight], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` holds, the reader dies, or ``timeout``; return the result."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: predicate(self) or self._reader_error is not None or not self._reader_alive(), timeout
            )
            if self._reader_error is not None:
                raise RuntimeError(f"Spotlight SSE reader failed: {self._reader_error!r}\n{self.output()}")
            return bool(ok) and predicate(self)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def tail(
        self,
        types: Sequence[str] = ("errors",),
        until: Callable[[List[Dict[str, Any]]], bool] = bool,
        timeout: float = 15.0,
    ) -> List[Dict[str, Any]]:
        """Run ``spotlight tail <types> -f json -p <port>`` until ``until(lines)`` holds or ``timeout``.

        That CLI attaches to this sidecar's SSE feed (which replays the buffer), so it sees events
        sent before it started. Returns the parsed JSON lines.
        """
        assert self.port is not None
        cmd = [str(spotlight_bin()), "tail", *types, "-f", "json", "-p", str(self.port)]
        lines: List[Dict[str, Any]] = []
        done = threading.Event()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        other: List[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                text = raw.decode(errors="replace").strip()
                if text.startswith("{"):
                    lines.append(json.loads(text))
                    if until(lines):
                        done.set()
                elif text:
                    other.append(text)
            done.set()

        thread = threading.Thread(target=pump, name="spotlight-tail", daemon=True)
        thread.start()
        try:
            done.wait(timeout)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            thread.join(timeout=5)
        if not until(lines):
            raise AssertionError(
                f"`{' '.join(cmd)}` did not produce the expected lines in {timeout}s; "
                f"got {lines!r}\nother output:\n" + "\n".join(other)
            )
        return lines

    def clear(self) -> None:
        """Forget collected envelopes (the sidecar's own buffer is kept)."""
        with self._cond:
            self._envelopes.clear()

    # -- diagnostics -------------------------------------------------------------------------
    def _logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path) if p.exists()
        )

    def output(self) -> str:
        return f"--- spotlight logs ({self.log_dir})\n{self._logs()}"
