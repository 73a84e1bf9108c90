"""Success-path cost of ``@auto_capture_errors``: decorated vs undecorated calls, same run.

    /work/venv/bin/python bench/decorator_overhead.py [--rounds 15] [--calls 200000]

Sync functions, methods and coroutines (awaited in a loop inside one event loop run) are timed in
interleaved rounds (undecorated, decorated, undecorated, ...) so drift in CPU frequency hits both
alike; each figure is the median over rounds, in nanoseconds per call. Results go in
docs/capture-api.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from typing import Any, Callable

from otel_sentry import auto_capture_errors


def plain(user_id: int, amount: float) -> float:
    return amount * 2


@auto_capture_errors
def decorated(user_id: int, amount: float) -> float:
    return amount * 2


async def plain_async(user_id: int, amount: float) -> float:
    return amount * 2


@auto_capture_errors
async def decorated_async(user_id: int, amount: float) -> float:
    return amount * 2


def _generic_wrapper_of(func: Callable[..., Any]) -> Callable[..., Any]:
    """The same decorator with its generated wrapper turned off: the ``*args, **kwargs`` fallback."""
    from otel_sentry import _decorator

    generated = _decorator.fast_wrapper
    _decorator.fast_wrapper = lambda *args: None  # type: ignore[assignment]
    try:
        return auto_capture_errors(func)
    finally:
        _decorator.fast_wrapper = generated


def plain_too(user_id: int, amount: float) -> float:
    return amount * 2


generic = _generic_wrapper_of(plain_too)


class Service:
    def plain(self, user_id: int) -> int:
        return user_id

    @auto_capture_errors
    def decorated(self, user_id: int) -> int:
        return user_id


def time_sync(fn: Callable[..., Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn(7, 1.5)
    return (time.perf_counter_ns() - start) / calls


def time_method(fn: Callable[..., Any], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn(7)
    return (time.perf_counter_ns() - start) / calls


def time_async(fn: Callable[..., Any], calls: int) -> float:
    async def loop() -> int:
        start = time.perf_counter_ns()
        for _ in range(calls):
            await fn(7, 1.5)
        return time.perf_counter_ns() - start

    return asyncio.run(loop()) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="print {case: [undecorated, decorated]} ns")
    args = parser.parse_args()
    service = Service()
    pairs = {
        "sync function": (time_sync, plain, decorated),
        "sync, generic fallback": (time_sync, plain_too, generic),
        "method": (time_method, service.plain, service.decorated),
        "async function (awaited)": (time_async, plain_async, decorated_async),
    }
    runs = f"{args.rounds} rounds x {args.calls} calls"
    if not args.json:
        print(f"Python {platform.python_version()} on {platform.machine()}, {runs}")
        print(f"{'case':<26} {'undecorated':>12} {'decorated':>10} {'overhead':>9}  (ns per call, medians)")
    figures: dict[str, tuple[float, float]] = {}
    for name, (timer, base, wrapped) in pairs.items():
        timer(base, 1000), timer(wrapped, 1000)  # warm up
        base_ns, wrapped_ns = [], []
        for _ in range(args.rounds):
            base_ns.append(timer(base, args.calls))
            wrapped_ns.append(timer(wrapped, args.calls))
        b, w = statistics.median(base_ns), statistics.median(wrapped_ns)
        figures[name] = (b, w)
        if not args.json:
            print(f"{name:<26} {b:>12.0f} {w:>10.0f} {w - b:>+9.0f}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
