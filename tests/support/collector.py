"""The otelcol-otel-sentry collector built from collector/manifest.yaml, run as a real process.

``collector_binary()`` returns the binary that ``collector/build.sh`` builds into its cache
directory (building it when missing: minutes cold, an instant warm). ``Collector`` runs one
instance on 127.0.0.1 with free ports and waits for its health check.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import httpx

from .apps import free_port

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = ROOT / "collector"
BUILD_SCRIPT = COLLECTOR_DIR / "build.sh"
BUILD_TIMEOUT = 1800.0  # a cold build on 2 busy cores


class CollectorUnavailable(RuntimeError):
    pass


_binary: Optional[Path] = None


def collector_binary() -> Path:
    """Path of the built distribution; builds it once per session (cached across sessions)."""
    global _binary
    if _binary is not None:
        return _binary
    if shutil.which("go") is None and not os.environ.get("OTEL_SENTRY_COLLECTOR_BINARY"):
        raise CollectorUnavailable("Go is not installed: collector/build.sh cannot build the collector")
    override = os.environ.get("OTEL_SENTRY_COLLECTOR_BINARY")
    if override:
        _binary = Path(override)
        return _binary
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"collector/build.sh failed ({done.returncode}):\n{done.stderr[-4000:]}")
    _binary = Path(done.stdout.strip().splitlines()[-1])
    return _binary


def validate(
    configs: Sequence[Path], env: Optional[Mapping[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """``otelcol validate`` on one config or several merged ones, with ``env`` only."""
    args = [str(collector_binary()), "validate", *(f"--config={c}" for c in configs)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=_env(env), check=False)


def _env(extra: Optional[Mapping[str, str]]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG")}
    env.update(extra or {})
    return env


class Collector:
    """One collector process on 127.0.0.1: OTLP gRPC/HTTP, health check and own telemetry on free
    ports (several collectors on one host would collide on 8888 otherwise)."""

    def __init__(
        self, configs: Sequence[Path], env: Optional[Mapping[str, str]] = None, name: str = "otelcol"
    ):
        self.name = name
        self.grpc_port, self.http_port, self.health_port, self.telemetry_port = (
            free_port() for _ in range(4)
        )
        self.env = _env(
            {
                "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
                "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
                "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{self.health_port}",
                "TELEMETRY_HOST": "127.0.0.1",
                "TELEMETRY_PORT": str(self.telemetry_port),
                **(env or {}),
            }
        )
        self.configs = list(configs)
        self.log = Path(tempfile.mkdtemp(prefix=f"otel-sentry-{name}-")) / "collector.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> Collector:
        args = [str(collector_binary()), *(f"--config={c}" for c in self.configs)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                args, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.health_port}/", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.name} not healthy after {timeout}s:\n{self.output()}")

    def metrics(self) -> Dict[str, float]:
        """The collector's own Prometheus metrics, summed per metric name (without ``_total``)."""
        text = httpx.get(f"http://127.0.0.1:{self.telemetry_port}/metrics", timeout=5.0).text
        totals: Dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            # counters are named with or without Prometheus' _total suffix, by exporter version
            name = line.split("{", 1)[0].split(" ", 1)[0].removesuffix("_total")
            with contextlib.suppress(ValueError):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return totals

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def gateways_list(endpoints: List[str]) -> str:
    """The agent's OTEL_SENTRY_GATEWAYS value (a YAML list)."""
    return "[" + ", ".join(endpoints) + "]"
