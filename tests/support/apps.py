"""Run an ASGI app in a subprocess exactly as a user would: ``opentelemetry-instrument uvicorn mod:app``.

End-to-end tests need the real entry-point loading, the real process lifecycle (atexit flushes on
SIGINT) and a clean environment; an in-process app would share the test's globals instead.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Type, Union

import httpx

BIN_DIR = Path(sys.executable).parent  # not resolved: the venv's bin, where its scripts live
_LIVE: Set[AppProcess] = set()


def free_port() -> int:
    """A port that was free a moment ago (the tiny race is acceptable for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """os.environ without OTEL_*/SENTRY_* (the developer's shell must not configure the app under
    test), plus ``env``."""
    result = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SENTRY_"))}
    result["OTEL_SENTRY_RAISE_INTERNAL_ERRORS"] = "1"  # a bug of ours fails the request, so the test
    result.update(env or {})
    return result


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        proc.kill()


class AppProcess:
    """``opentelemetry-instrument uvicorn <module>:<app>`` on 127.0.0.1:<free port>.

    ``start()`` returns once ``GET ready_path`` answers (any status); on failure or timeout it raises
    with the captured output. Always stop it (context manager), or at worst the atexit hook kills it.
    """

    def __init__(
        self,
        module: str,
        *,
        cwd: Union[str, Path],
        env: Optional[Mapping[str, str]] = None,
        app: str = "app",
        ready_path: str = "/",
        ready_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
        log_dir: Union[str, Path, None] = None,
    ) -> None:
        self.module = module
        self.cwd = Path(cwd)
        self.port = free_port()
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        self.log_dir = (
            Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="otel-sentry-app-"))
        )
        self.stdout_path = self.log_dir / f"{module}.stdout.log"
        self.stderr_path = self.log_dir / f"{module}.stderr.log"
        self.command = [
            str(BIN_DIR / "opentelemetry-instrument"),
            "uvicorn",
            f"{module}:{app}",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            *extra_args,
        ]
        self.env = clean_env(env)
        self.env["PATH"] = os.pathsep.join([str(BIN_DIR), self.env.get("PATH", "")])
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(self.cwd), self.env.get("PYTHONPATH", "")] if p
        )
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self._client: Optional[httpx.Client] = None
        self.returncode: Optional[int] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=10.0)
        return self._client

    def start(self) -> AppProcess:
        if self.proc is not None:
            return self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # own process group: a terminal ^C does not hit it, killpg does
            )
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        last_error: Optional[BaseException] = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"app exited with {code} before becoming ready\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                httpx.get(self.url + self.ready_path, timeout=5.0)
                return
            except (OSError, httpx.HTTPError) as exc:
                last_error = exc
                time.sleep(0.1)
        raise TimeoutError(
            f"app not ready on {self.url}{self.ready_path} after {self.ready_timeout}s "
            f"(last error: {last_error!r})\n{self.output()}"
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` (SIGINT by default: uvicorn then exits normally and atexit flushes run) and
        wait; SIGKILL after ``timeout``. Returns the exit code (negative = killed by that signal)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        proc = self.proc
        if proc is None:
            return self.returncode if self.returncode is not None else 0
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        self.kill()
        self.returncode = proc.returncode
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the process group we started (only while its leader is unreaped, so the id cannot
        have been reused); never raises."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.returncode = proc.returncode
        _LIVE.discard(self)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def output(self) -> str:
        """Both streams, labelled, for assertion messages."""
        return (
            f"--- command: {' '.join(self.command)} (cwd={self.cwd})\n"
            f"--- stdout ({self.stdout_path})\n{self.stdout()}\n"
            f"--- stderr ({self.stderr_path})\n{self.stderr()}"
        )

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(timeout=5.0)
        self.kill()
        if exc_type is not None:
            # pytest shows captured stdout of a failing test: make the app's output part of it.
            print(self.output())


APPS_DIR = Path(__file__).resolve().parents[1] / "apps"


def probe(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """``opentelemetry-instrument python config_probe.py``: the configured pipeline, and stderr."""
    result = subprocess.run(
        [str(BIN_DIR / "opentelemetry-instrument"), sys.executable, "config_probe.py"],
        cwd=APPS_DIR,
        env=clean_env({"OTEL_SENTRY_INBOX_DIR": "/tmp/otel-sentry-probe-inbox", **env}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr
