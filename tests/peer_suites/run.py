"""Run the test suites that ship in the sdists of OpenTelemetry's ASGI, FastAPI and Starlette
instrumentations (the installed versions) stock and with otel_sentry active, and compare.

Modes (see ``otel_sentry_peer_plugin.py``):

* ``stock``: plain pytest;
* ``otel_sentry``: under ``opentelemetry-instrument``, so otel_sentry's distro, configurator,
  sampler, propagator and instrumentors are active exactly as for an app (the peers' own
  instrumentors are left to the tests, which instrument and uninstrument them themselves);
* ``gate``: as ``otel_sentry``, and the tests' tracer providers use the otel_sentry sampler at rate 1
  so the sampling gate decides every request.

A test may fail stock (version drift between a suite and the framework versions installed) only if
``expected.json`` lists it; no test may fail only with otel_sentry unless ``expected.json`` lists it
with the reason (a known defect with an open fix). Either list going stale fails too, so it stays
honest. sdists are cached in ``~/.cache/otel-sentry/peer-suites`` (``OTEL_SENTRY_PEER_CACHE``).

``python -m tests.peer_suites.run [--markdown]`` prints the table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXPECTED_FILE = HERE / "expected.json"
PACKAGES = (
    "opentelemetry-instrumentation-asgi",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-starlette",
)
MODES = ("stock", "otel_sentry", "gate")
RUN_TIMEOUT = 240.0  # one suite in one mode; they take seconds
DOWNLOAD_TIMEOUT = 180.0


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "otel-sentry" / "peer-suites"
    return Path(os.environ.get("OTEL_SENTRY_PEER_CACHE") or default)


def suite(package: str) -> tuple[str, Path]:
    """(installed version, the directory of its extracted sdist), downloading it once."""
    version = metadata.version(package)
    base = cache_dir()
    target = base / f"{package}-{version}"
    if (target / "tests").is_dir():
        return version, target
    downloads = base / "sdists"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = _find_sdist(downloads, package, version)
    if archive is None:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"),
                *("--disable-pip-version-check", "-d", str(downloads), f"{package}=={version}"),
            ],
            check=True,
            timeout=DOWNLOAD_TIMEOUT,
        )
        archive = _find_sdist(downloads, package, version)
        if archive is None:
            raise RuntimeError(f"pip download left no sdist of {package}=={version} in {downloads}")
    staging = Path(tempfile.mkdtemp(dir=base))
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data") if sys.version_info >= (3, 12) else tar.extractall(staging)
    (root,) = [p for p in staging.iterdir() if p.is_dir()]
    if target.exists():
        shutil.rmtree(target)
    root.rename(target)  # atomic: a half-extracted suite is never taken for a cached one
    shutil.rmtree(staging, ignore_errors=True)
    return version, target


def _find_sdist(directory: Path, package: str, version: str) -> Path | None:
    stem = f"{package.replace('-', '_')}-{version}"
    for candidate in (directory / f"{stem}.tar.gz", directory / f"{package}-{version}.tar.gz"):
        if candidate.is_file():
            return candidate
    return None


def _other_instrumentors() -> str:
    """Every installed instrumentor but otel_sentry's: the suites instrument their own."""
    names = {ep.name for ep in metadata.entry_points(group="opentelemetry_instrumentor")}
    return ",".join(sorted(n for n in names if not n.startswith("otel_sentry")))


def _environment(mode: str, results: Path, scratch: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "SENTRY_", "PYTEST_", "FASTAPI_")) and k != "PYTHONPATH"
    }
    env.update(
        OTEL_SENTRY_PEER_MODE=mode,
        OTEL_SENTRY_PEER_RESULTS=str(results),
        PYTHONPATH=str(HERE),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if mode != "stock":
        env.update(
            OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=_other_instrumentors(),
            OTEL_SENTRY_INBOX_DIR=str(scratch / "inbox"),
            XDG_DATA_HOME=str(scratch),
        )
    return env


@dataclass
class ModeRun:
    outcomes: dict[str, str]
    returncode: int
    seconds: float
    output: str

    @property
    def failed(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o == "failed"}


RERUN_AT_MOST = 60


def run_mode(directory: Path, mode: str) -> ModeRun:
    """Run one suite in one mode; a test that fails is run once more on its own, and counts as failed
    only if it fails again (the ASGI suite's tests wait on the event loop with short timeouts, which
    a loaded machine misses now and then, stock or not)."""
    first = _run_pytest(directory, mode, ["tests"])
    failed = sorted(first.failed)
    if failed and len(failed) <= RERUN_AT_MOST:
        again = _run_pytest(directory, mode, failed)
        for test in failed:
            if again.outcomes.get(test) == "passed":
                first.outcomes[test] = "passed"
        first.seconds += again.seconds
    return first


def _run_pytest(directory: Path, mode: str, selection: list[str]) -> ModeRun:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix=f"peer-{mode}-") as tmp:
        scratch = Path(tmp)
        results = scratch / "results.jsonl"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "otel_sentry_peer_plugin",
        ]
        command += ["-o", "addopts=", "--timeout=60", *selection]
        if mode != "stock":
            command = [str(bin_dir / "opentelemetry-instrument"), *command]
        start = time.monotonic()
        proc = subprocess.run(
            command,
            cwd=directory,
            env=_environment(mode, results, scratch),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        seconds = time.monotonic() - start
        outcomes: dict[str, str] = {}
        if results.exists():
            for line in results.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                if outcomes.get(entry["test"]) != "failed":
                    outcomes[entry["test"]] = entry["outcome"]
    return ModeRun(outcomes, proc.returncode, seconds, proc.stdout)


@dataclass
class SuiteResult:
    package: str
    version: str
    runs: dict[str, ModeRun] = field(default_factory=dict)

    def only_with_otel_sentry(self, mode: str) -> set[str]:
        stock = self.runs["stock"]
        run = self.runs[mode]
        missing = {t for t in stock.outcomes if t not in run.outcomes}  # a crashed run fails them all
        return (run.failed | missing) - stock.failed


def run_suite(package: str, modes: Iterable[str] = MODES) -> SuiteResult:
    version, directory = suite(package)
    result = SuiteResult(package, version)
    for mode in modes:
        result.runs[mode] = run_mode(directory, mode)
    return result


def load_expected() -> dict[str, Any]:
    return dict(json.loads(EXPECTED_FILE.read_text(encoding="utf-8")))


def problems(result: SuiteResult, expected: dict[str, Any]) -> list[str]:
    """What makes CI fail: unlisted failures, stale list entries, runs that did not complete."""
    listed = expected.get(result.package, {})
    found: list[str] = []
    for mode, run in result.runs.items():
        if run.returncode not in (0, 1) or not run.outcomes:
            found.append(
                f"{mode}: pytest exited {run.returncode} after {len(run.outcomes)} tests:\n"
                + run.output[-3000:]
            )
    stock = result.runs["stock"].failed
    known_stock = set(listed.get("stock_failures", []))
    found += [
        f"stock: {t} fails stock and is not listed in expected.json" for t in sorted(stock - known_stock)
    ]
    found += [
        f"stock: {t} is listed as failing stock but passes: remove it" for t in sorted(known_stock - stock)
    ]
    for mode in result.runs:
        if mode == "stock":
            continue
        only = result.only_with_otel_sentry(mode)
        known = set(listed.get("otel_sentry_only", {}).get(mode, {}))
        found += [f"{mode}: {t} fails only with otel_sentry" for t in sorted(only - known)]
        found += [
            f"{mode}: {t} is listed as failing only with otel_sentry but passes: remove it"
            for t in sorted(known - only)
        ]
    return found


def table(results: Iterable[SuiteResult]) -> str:
    """Markdown: per package and mode, passed / failed / failing only with otel_sentry."""
    lines = [
        "| package | mode | tests | passed | failed | skipped | failing only with otel_sentry | wall time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for mode, run in result.runs.items():
            counts = {
                o: sum(1 for v in run.outcomes.values() if v == o) for o in ("passed", "failed", "skipped")
            }
            only = "-" if mode == "stock" else str(len(result.only_with_otel_sentry(mode)))
            lines.append(
                f"| {result.package} {result.version} | {mode} | {len(run.outcomes)} | {counts['passed']} | "
                f"{counts['failed']} | {counts['skipped']} | {only} | {run.seconds:.1f} s |"
            )
    return "\n".join(lines)


def run_all(packages: Iterable[str] = PACKAGES) -> list[SuiteResult]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores
        return list(pool.map(run_suite, packages))


def main(argv: list[str]) -> int:
    start = time.monotonic()
    results = run_all([p for p in PACKAGES if not argv[1:] or any(a in p for a in argv[1:])])
    print(table(results))
    expected = load_expected()
    found = [f"{r.package}: {p}" for r in results for p in problems(r, expected)]
    for result in results:
        for mode in MODES[1:]:
            reasons = expected.get(result.package, {}).get("otel_sentry_only", {}).get(mode, {})
            for test in sorted(result.only_with_otel_sentry(mode)):
                print(
                    f"only with otel_sentry ({mode}): {result.package}: {test}: "
                    + reasons.get(test, "NOT LISTED")
                )
    print("\n".join(found) or "no unexpected failures")
    print(f"wall time {time.monotonic() - start:.1f} s")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
