"""How otel_sentry's cost grows (issue 15 item 4), next to stock lean at the same sampled share.

    python bench/growth.py                 # full run, prints the figures
    python bench/growth.py --write-docs    # and writes docs/img/growth_*.png
    python bench/growth.py --smoke         # tiny sizes: checks the harness

Four curves, each configuration (``bare``, ``otel_lean_eq``, ``ours_otlp``: bench/_peer_worker.py)
in a process of its own, driven in-process by bench/_asgi.py:

* **routes**: CPU per request (incl. a flush of what was exported) as the app grows from 10 to
  1,000 routes, requests spread over every route (bench/_growth_app.py ``routes_app``);
* **errors**: CPU per captured error as the traceback grows from 10 to 500 frames, and as the
  raising frame's locals grow (``error_app``);
* **memory**: resident memory (``/proc/self/statm``, after a GC) as distinct URLs grow to 100k on one
  route, and as distinct routes grow (one request per route of an app that has them all: Starlette
  matches routes one by one, so this curve stops at 10k by default, ``--max-routes``);
* **workers**: end-to-end requests/s with 1, 2 and 4 uvicorn workers under ``opentelemetry-instrument``
  -style start-up (each worker configures itself, bench/_worker_app.py), Python load generator.

Every figure is a median over repeats; read the shapes and the ratios between configurations: on a
shared 2-core machine absolute values move with the load.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

PLOTS = ROOT / "docs" / "img"
CONFIGS = ("bare", "otel_lean_eq", "ours_otlp")


# -- child: one configuration, one curve ------------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _cpu_per_request(app: Any, paths: list[str], flush: Any, repeats: int, expected: int) -> float:
    """Median over repeats of CPU µs per request, each batch closed by a flush."""
    import asyncio

    from _asgi import call

    async def batch() -> float:
        cpu0 = time.process_time_ns()
        for path in paths:
            base, _, query = path.partition("?")
            status = await call(app, "GET", base, query=query.encode())
            if status != expected:
                raise SystemExit(f"{path}: status {status}, expected {expected}")
        flush()
        return (time.process_time_ns() - cpu0) / 1000 / len(paths)

    async def run() -> list[float]:
        await batch()  # warm-up: caches, connections
        return [await batch() for _ in range(repeats)]

    return statistics.median(asyncio.run(run()))


def child(kind: str, config: str, dsn: str, otlp: str, params: dict[str, Any]) -> dict[str, Any]:
    from _peer_worker import configure

    flush = configure(config, dsn, otlp)
    import _growth_app

    repeats = params["repeats"]
    if kind == "routes":
        out = {}
        for n in params["sizes"]:
            app = _growth_app.routes_app(n)
            count = params["requests"]
            paths = [f"/v1/r{(i * 7919) % n}/items/item-{i % 50}" for i in range(count)]
            out[str(n)] = _cpu_per_request(app, paths, flush, repeats, 200)
        return out
    if kind == "errors":
        app = _growth_app.error_app()
        frames = {
            str(d): _cpu_per_request(
                app, [f"/fail?depth={d}&locals=5"] * params["errors"], flush, repeats, 500
            )
            for d in params["depths"]
        }
        local_vars = {
            str(n): _cpu_per_request(
                app, [f"/fail?depth=10&locals={n}"] * params["errors"], flush, repeats, 500
            )
            for n in params["locals"]
        }
        return {"frames": frames, "locals": local_vars}
    if kind == "memory":
        return _memory(params, flush)
    raise SystemExit(f"unknown kind {kind!r}")


def _memory(params: dict[str, Any], flush: Any) -> dict[str, Any]:
    import asyncio

    import _growth_app
    import _peer_app
    from _asgi import call

    async def walk(app: Any, paths: Any, checkpoints: list[int]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for done, path in enumerate(paths, 1):
            await call(app, "GET", path)
            if done in checkpoints:
                flush()
                gc.collect()
                sizes[str(done)] = _rss_kb()
        return sizes

    urls = params["max_urls"]
    url_points = [p for p in (1, 1_000, 10_000, 25_000, 50_000, 100_000) if p <= urls] + [urls]
    by_url = asyncio.run(
        walk(_peer_app.app, (f"/v1/models/m-{i}" for i in range(urls)), sorted(set(url_points)))
    )
    routes = params["max_routes"]
    app = _growth_app.routes_app(routes)
    route_points = [p for p in (1, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000) if p <= routes] + [routes]
    by_route = asyncio.run(walk(app, (f"/v1/r{i}/items/x" for i in range(routes)), sorted(set(route_points))))
    return {"urls": by_url, "routes": by_route}


# -- parent -----------------------------------------------------------------------------------------


def run_child(kind: str, config: str, dsn: str, otlp: str, params: dict[str, Any]) -> dict[str, Any]:
    from overhead import clean_env

    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            kind,
            config,
            dsn,
            otlp,
            json.dumps(params),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        env=clean_env(),
        cwd=BENCH,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind}/{config} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _load(url: str, seconds: float, connections: int) -> float:
    """Requests/s, a new connection per request: with keep-alive, ``uvicorn --workers N`` answers
    this client in ~45 ms per request (delayed ACKs on sockets handed from the supervisor), which
    would measure the client, not the workers."""
    from overhead import python_load

    return python_load(url, seconds, connections, keepalive=False)


def workers_throughput(
    config: str, dsn: str, otlp: str, counts: list[int], seconds: float, repeats: int
) -> dict[str, float]:
    """Median requests/s per worker count, uvicorn --workers N, each worker configured at import."""
    from overhead import clean_env, free_port, wait_ready

    rates: dict[str, float] = {}
    for n in counts:
        values = []
        for _ in range(repeats):
            port = free_port()
            env = clean_env(BENCH_CONFIG=config, BENCH_DSN=dsn, BENCH_OTLP=otlp)
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "_worker_app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(n),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env=env,
                cwd=BENCH,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                url = f"http://127.0.0.1:{port}/v1/models/gpt-4o"
                wait_ready(url, server)
                time.sleep(0.5 * n)  # the other workers may still be starting
                _load(url, min(1.0, seconds / 4), 4 * n)  # warm-up: every worker
                values.append(_load(url, seconds, 4 * n))
            finally:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
        rates[str(n)] = statistics.median(values)
    return rates


def plot(results: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(parents=True, exist_ok=True)
    style = {"bare": ("#7f7f7f", ":"), "otel_lean_eq": ("#1f77b4", "--"), "ours_otlp": ("#d62728", "-")}
    written = []

    def lines(ax: Any, key: str, sub: str = "", over_bare: bool = False) -> None:
        for config in CONFIGS:
            data = results[key].get(config)
            if not data:
                continue
            data = data[sub] if sub else data
            xs = sorted(int(k) for k in data)
            ys = [data[str(x)] for x in xs]
            if over_bare and results[key].get("bare"):
                if config == "bare":
                    continue
                base = results[key]["bare"][sub] if sub else results[key]["bare"]
                ys = [y - base[str(x)] for x, y in zip(xs, ys)]
            color, dash = style[config]
            ax.plot(xs, ys, dash, marker="o", color=color, label=config)
        ax.legend()
        ax.grid(alpha=0.3)

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(PLOTS / name, dpi=100)
        plt.close(fig)
        written.append(f"img/{name}")

    fig, ax = plt.subplots(figsize=(6, 4))
    lines(ax, "routes", over_bare=True)
    ax.set(
        xscale="log",
        xlabel="routes in the app",
        ylabel="CPU µs per request over bare",
        title="Per-request cost as the app grows",
    )
    save(fig, "growth_routes.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    lines(axes[0], "errors", "frames", over_bare=True)
    axes[0].set(
        xlabel="frames below the handler",
        ylabel="CPU µs per error over bare",
        title="Per-error cost vs traceback depth",
    )
    lines(axes[1], "errors", "locals", over_bare=True)
    axes[1].set(
        xlabel="locals in the raising frame",
        ylabel="CPU µs per error over bare",
        title="Per-error cost vs locals",
    )
    save(fig, "growth_errors.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, sub, label in (
        (axes[0], "urls", "distinct URLs (one route)"),
        (axes[1], "routes", "distinct routes"),
    ):
        for config in CONFIGS:
            data = results["memory"].get(config, {}).get(sub)
            if data:
                xs = sorted(int(k) for k in data)
                color, dash = style[config]
                ax.plot(xs, [data[str(x)] / 1024 for x in xs], dash, marker="o", color=color, label=config)
        ax.set(xlabel=label, ylabel="resident memory, MiB", title=f"Memory vs {label}")
        ax.legend()
        ax.grid(alpha=0.3)
    save(fig, "growth_memory.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    lines(ax, "workers")
    ax.set(xlabel="uvicorn workers", ylabel="requests/s", title="Throughput with 1, 2, 4 workers")
    save(fig, "growth_workers.png")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=5, metavar=("KIND", "CONFIG", "DSN", "OTLP", "PARAMS"))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-urls", type=int, default=100_000)
    parser.add_argument("--max-routes", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="load per worker-count run")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json", help="write the raw figures to this file")
    parser.add_argument("--only", help="comma-separated curves to run: routes,errors,memory,workers")
    parser.add_argument(
        "--merge", help="start from the figures of an earlier run (JSON) and replace those run"
    )
    args = parser.parse_args()
    if args.child:
        kind, config, dsn, otlp, params = args.child
        print(json.dumps(child(kind, config, dsn, otlp, json.loads(params))))
        return
    smoke = args.smoke
    params = {
        "routes": {
            "sizes": [10, 100] if smoke else [10, 30, 100, 300, 1000],
            "requests": 40 if smoke else 400,
        },
        "errors": {
            "depths": [10, 50] if smoke else [10, 50, 100, 250, 500],
            "locals": [5, 50] if smoke else [5, 50, 200, 1000],
            "errors": 4 if smoke else 40,
        },
        "memory": {
            "max_urls": 300 if smoke else args.max_urls,
            "max_routes": 50 if smoke else args.max_routes,
        },
    }
    repeats = 1 if smoke else args.repeats
    from otel_sentry.testing import OtlpReceiver, SentryIngest

    only = set(args.only.split(",")) if args.only else {"routes", "errors", "memory", "workers"}
    results: dict[str, Any] = {"routes": {}, "errors": {}, "memory": {}, "workers": {}}
    if args.merge:
        results.update(json.loads(Path(args.merge).read_text()))
    with SentryIngest() as ingest, OtlpReceiver() as otlp:
        for kind in [k for k in ("routes", "errors", "memory") if k in only]:
            for config in CONFIGS:
                if kind == "memory" and config == "bare":
                    continue
                print(f"{kind}: {config}", file=sys.stderr)
                dsn = ingest.dsn(public_key=config)
                results[kind][config] = run_child(
                    kind, config, dsn, otlp.endpoint, {**params[kind], "repeats": repeats}
                )
                ingest.clear()
                otlp.clear()
        for config in CONFIGS if "workers" in only else ():
            print(f"workers: {config}", file=sys.stderr)
            results["workers"][config] = workers_throughput(
                config,
                ingest.dsn(public_key=config),
                otlp.endpoint,
                [1, 2] if smoke else [1, 2, 4],
                0.5 if smoke else args.seconds,
                1 if smoke else 3,
            )
            ingest.clear()
            otlp.clear()
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.write_docs:
        for name in plot(results):
            print(f"wrote docs/{name}", file=sys.stderr)


if __name__ == "__main__":
    main()
