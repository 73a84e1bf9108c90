"""The benchmark harness itself runs (tiny counts): every peer is set up, really delivers what it
claims (the harness checks the receivers and exits non-zero otherwise), and every table is produced.
The figures of docs/performance.md come from full runs on demand, never from the test suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_overhead_bench_runs_every_configuration_and_every_peer_delivers(tmp_path: Path) -> None:
    raw = tmp_path / "raw.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "overhead.py"), "--smoke", "--json", str(raw)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(raw.read_text())
    assert figures["problems"] == []
    configs = ("bare", "seeds", "otel", "otel_lean", "otel_lean_eq", "sentry_otlp", "ours", "ours_otlp")
    for config in configs:
        for route in ("general", "chat", "health", "error"):
            cell = figures["samples"][f"{config}/{route}"]
            assert cell["cpu_us"] > 0 and cell["latency_us"] > 0
        assert figures["rates"][config] and figures["rates"][config][0] > 0
        assert figures["rss_kb"][config] > 0 and figures["startup_s"][config] > 0
    # an instrumented route costs more than the bare one: the peers were really on
    for config in configs[1:]:
        assert figures["samples"][f"{config}/error"]["cpu_us"] > figures["samples"]["bare/error"]["cpu_us"]
    assert {row[0] for row in figures["targets"]} >= {
        "ours / seeds, per captured error (cpu)",
        "ours / stock lean, health (cpu)",
        "ours end-to-end throughput / bare",
    }
    # the side-by-side split: sampled and unsampled requests apart, and the gate on and off
    for variant in (
        "otel_lean@all",
        "otel_lean@none",
        "ours_otlp@all",
        "ours_otlp@none",
        "ours_otlp@none+nogate",
    ):
        for route in ("general", "chat", "error"):
            assert figures["samples"][f"{variant}/{route}"]["cpu_us"] > 0
    assert {row[0] for row in figures["targets"]} >= {
        "ours_otlp / stock lean at equal rates, general (cpu)",
        "ours_otlp / stock lean at equal rates, end-to-end throughput",
        "ours_otlp peak RSS - stock lean at equal rates (MiB)",
        "ours_otlp start-up - stock lean (ms)",
    }
    assert "### Side by side: ours_otlp against stock lean at the same sampled share" in result.stdout
    assert "### Targets" in result.stdout
    for pipeline in ("otlp", "ours_otlp", "ours_sentry"):
        assert figures["exporters"][pipeline]["spans_per_s"] > 0
    assert set(figures["decorator_ns"]) >= {"sync function", "method", "async function (awaited)"}


def test_the_request_secrets_bench_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "request_secrets.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "with credentials, failed (1 error event)" in result.stdout


def test_the_growth_bench_gives_every_curve_for_every_configuration(tmp_path: Path) -> None:
    raw = tmp_path / "growth.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "growth.py"), "--smoke", "--json", str(raw)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(raw.read_text())
    for config in ("bare", "otel_lean_eq", "ours_otlp"):
        assert set(figures["routes"][config]) == {"10", "100"}
        assert set(figures["errors"][config]["frames"]) == {"10", "50"}
        assert set(figures["errors"][config]["locals"]) == {"5", "50"}
        assert set(figures["workers"][config]) == {"1", "2"}
        assert all(v > 0 for v in figures["workers"][config].values())
    for config in ("otel_lean_eq", "ours_otlp"):
        assert set(figures["memory"][config]["urls"]) == {"1", "300"}
        assert set(figures["memory"][config]["routes"]) == {"1", "50"}
    # an error costs the instrumented configurations more than the bare app: they really captured it
    for depth in ("10", "50"):
        assert figures["errors"]["ours_otlp"]["frames"][depth] > figures["errors"]["bare"]["frames"][depth]


def test_the_startup_bench_compares_with_stock() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "startup.py"),
            "--repeats",
            "1",
            "--configs",
            "otel_lean,ours_otlp",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures["startup_s"]) == {"otel_lean", "ours_otlp"}
    assert "| ours_otlp |" in result.stdout


def test_the_profiling_bench_runs_both_profilers_and_every_profile_is_linked(tmp_path: Path) -> None:
    raw = tmp_path / "profiling.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "profiling_cost.py"),
            *("--rounds", "1", "--requests", "30"),
            "--json",
            str(raw),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(raw.read_text())
    for sdk in ("otel_sentry", "sentry_sdk"):
        (off,) = figures[f"{sdk}/0"]
        (full,) = figures[f"{sdk}/1"]
        assert off["transactions"] > 0 and off["profiles"] == 0
        assert full["profiles"] > 0 and full["linked"] == full["profiles"]
    assert "| otel_sentry | 0.05 |" in result.stdout and "| sentry_sdk | 1 |" in result.stdout
