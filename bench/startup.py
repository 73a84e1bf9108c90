"""Start-up time under ``opentelemetry-instrument``: each configuration against stock, interleaved.

    python bench/startup.py                                  # bare, otel_lean, ours, ours_otlp
    python bench/startup.py --baseline-src /tmp/old          # plus ours/ours_otlp from an older checkout
    python bench/startup.py --importtime                     # and what otel_sentry's modules cost

Start-up is interpreter start to the app imported and instrumented: what the sitecustomize of
``opentelemetry-instrument`` does (bench/_peer_worker.py ``configure``), then ``import _peer_app``.
Configurations run in a random order each round, so a machine busy with something else slows them
alike; the figure to read is each configuration's median *minus stock lean's* in the same run.
``--baseline-src DIR`` runs ours and ours_otlp a second time with ``PYTHONPATH=DIR`` (a directory
holding an older ``otel_sentry`` package, e.g. ``git archive main otel_sentry | tar -x -C DIR``), for
a before/after in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from overhead import clean_env  # noqa: E402

from otel_sentry.testing import OtlpReceiver, SentryIngest  # noqa: E402


def _code(config: str, dsn: str, otlp: str) -> str:
    return (
        "import sys; sys.path.insert(0, '.'); import _peer_worker as w; "
        f"w.configure({config!r}, {dsn!r}, {otlp!r}); import _peer_app"
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(config: str, dsn: str, otlp: str, src: Optional[str], *flags: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its stderr)."""
    env = clean_env(**({"PYTHONPATH": src} if src else {}))
    cpu = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *flags, "-c", _code(config, dsn, otlp)],
        env=env,
        cwd=BENCH,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return time.perf_counter() - start, _children_cpu() - cpu, out.stderr


def precompile(*sources: str) -> None:
    """Byte-compile otel_sentry as ``pip install`` of its wheel does: an editable checkout run with
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module from source at each start, a
    cost no installed copy has (site-packages' peers were compiled at install)."""
    import compileall

    for source in (str(BENCH.parent / "otel_sentry"), *(str(Path(s) / "otel_sentry") for s in sources)):
        compileall.compile_dir(source, quiet=1)


def measure(
    configs: list[str], repeats: int, baseline_src: Optional[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall seconds and CPU seconds per run, per configuration (``name@before`` for the baseline's).
    CPU (user + system of the child) moves far less than wall time on a busy machine."""
    runs = [(c, None) for c in configs]
    if baseline_src:
        runs += [(c, baseline_src) for c in configs if c.startswith("ours")]
    precompile(*([baseline_src] if baseline_src else []))
    times: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    rng = random.Random(3)
    with SentryIngest() as ingest, OtlpReceiver() as otlp:
        for _ in range(repeats):
            for config, src in rng.sample(runs, len(runs)):
                seconds, cpu_seconds, _ = _run(config, ingest.dsn(public_key=config), otlp.endpoint, src)
                name = config + ("@before" if src else "")
                times.setdefault(name, []).append(seconds)
                cpu.setdefault(name, []).append(cpu_seconds)
    return times, cpu


def importtime(config: str) -> list[tuple[str, float]]:
    """otel_sentry's own modules and what they pulled in: cumulative ms of each top-level import."""
    with SentryIngest() as ingest, OtlpReceiver() as otlp:
        _, _, err = _run(config, ingest.dsn(public_key=config), otlp.endpoint, None, "-X", "importtime")
    rows = []
    for line in err.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if match and match.group(3).startswith(("otel_sentry", "sentry_sdk")) and len(match.group(2)) <= 3:
            rows.append((match.group(3), int(match.group(1)) / 1000))
    return sorted(rows, key=lambda r: -r[1])


def report(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> str:
    def over(values: dict[str, list[float]], name: str) -> str:
        if "otel_lean" not in values:
            return "n/a"
        return f"{(statistics.median(values[name]) - statistics.median(values['otel_lean'])) * 1000:+.0f}"

    lines = [
        "| configuration | wall (ms, median) | over stock lean | CPU (ms, median) | over stock lean |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in times:
        wall, used = statistics.median(times[name]) * 1000, statistics.median(cpu[name]) * 1000
        lines.append(f"| {name} | {wall:.0f} | {over(times, name)} | {used:.0f} | {over(cpu, name)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="bare,otel_lean,ours,ours_otlp")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--baseline-src")
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the raw figures as one JSON line")
    args = parser.parse_args()
    times, cpu = measure(args.configs.split(","), args.repeats, args.baseline_src)
    figures: dict[str, Any] = {"startup_s": times, "startup_cpu_s": cpu}
    print(report(times, cpu))
    if args.importtime:
        figures["importtime_ms"] = importtime("ours_otlp")
        for name, ms in figures["importtime_ms"][:15]:
            print(f"  {ms:7.1f} ms  {name}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
