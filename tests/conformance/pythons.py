"""Virtual environments of other Pythons (3.9, 3.13) for the conformance apps, cached outside the
checkout and keyed by the dependency spec, so a re-run only reinstalls otel_sentry itself.

The interpreters come from pyenv (``~/.pyenv/versions/<x.y.z>``) or ``PATH`` (``python3.9``); a
Python that is not there is skipped with the reason. ``OTEL_SENTRY_CONFORMANCE_CACHE`` moves the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(
    os.environ.get("OTEL_SENTRY_CONFORMANCE_CACHE", Path.home() / ".cache" / "otel-sentry" / "conformance")
)


def _pyproject_spec() -> List[str]:
    """The runtime dependencies and the conformance extra's app pins, from pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - the suite runs on 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    apps = [d for d in extras["conformance"] if not d.startswith("otel-sentry")]
    servers = [d for d in extras["test"] if d.split(">")[0].split("=")[0].strip() in SERVER_PACKAGES]
    return sorted(set(project["dependencies"] + apps + servers + ["fastapi>=0.100", "uvicorn>=0.30"]))


SERVER_PACKAGES = {"gunicorn", "hypercorn", "uvicorn-worker", "websockets", "httpx"}


def find_python(version: str) -> Optional[Path]:
    pyenv = Path.home() / ".pyenv" / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*"), reverse=True) if pyenv.is_dir() else []:
        if (candidate / "bin" / "python").exists():
            return candidate / "bin" / "python"
    found = shutil.which(f"python{version}")
    return Path(found) if found else None


def venv_for(version: str, timeout: float = 1500.0) -> Path:
    """The python of a cached venv of ``version`` with the conformance dependencies and this
    checkout's otel_sentry installed; raises LookupError when the interpreter is missing."""
    base = find_python(version)
    if base is None:
        raise LookupError(f"no Python {version} (pyenv or PATH)")
    spec = _pyproject_spec()
    constraints = Path(__file__).with_name("constraints.txt")
    key = hashlib.sha256(json.dumps([version, spec, constraints.read_text()]).encode()).hexdigest()[:16]
    target = CACHE / f"py{version}-{key}"
    python = target / "bin" / "python"
    stamp = target / "otel-sentry-ready.json"
    deadline = time.monotonic() + timeout
    if not stamp.exists():
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(base), "-m", "venv", str(target)], check=True, timeout=120)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "-c",
                str(constraints),
                "hatchling",
                "editables",
                *spec,
            ],
            check=True,
            timeout=max(60.0, deadline - time.monotonic()),
        )
        stamp.write_text(json.dumps({"spec": spec, "checkout": None}))
    state = json.loads(stamp.read_text())
    if state.get("checkout") != str(ROOT):  # otel_sentry itself: editable, from this checkout
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(ROOT)],
            check=True,
            timeout=300,
        )
        stamp.write_text(json.dumps({"spec": spec, "checkout": str(ROOT)}))
    return python


if __name__ == "__main__":  # warm the cache: python -m tests.conformance.pythons 3.9 3.13
    for v in sys.argv[1:]:
        print(v, venv_for(v))
