"""The OTLP/gRPC exporter beside the test venv, never in it.

tests/test_bad_config.py checks the message a user gets when ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``
names an exporter that is not installed, so the venv must not have it; the gRPC end-to-end runs put
this directory on their app's ``PYTHONPATH`` instead (entry points are found there too). Installed
once with ``pip --target`` into a cache outside the checkout, at the version of the OTLP/HTTP exporter
the venv has (one release family), keyed by that version and the Python.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "otel-sentry"


def grpc_exporter_dir(timeout: float = 600.0) -> Path:
    """A directory holding ``opentelemetry-exporter-otlp-proto-grpc`` and ``grpcio`` (its other
    dependencies are the venv's own); raises RuntimeError with pip's output when it cannot be made."""
    version = importlib.metadata.version("opentelemetry-exporter-otlp-proto-http")
    target = CACHE / f"otlp-grpc-{version}-py{sys.version_info[0]}{sys.version_info[1]}"
    if (target / ".ready").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="otlp-grpc-", dir=CACHE))
    try:
        done = subprocess.run(
            [
                sys.executable,
                *("-m", "pip", "install", "--quiet", "--no-deps", "--target", str(staging)),
                f"opentelemetry-exporter-otlp-proto-grpc=={version}",
                "grpcio>=1.66,<2",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip could not install the gRPC exporter: {done.stdout}{done.stderr}")
        (staging / ".ready").write_text(version)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a concurrent run sees all of it or none
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
