"""Where one configuration spends a route's CPU: cProfile over requests through bench/_asgi.py.

    python bench/profile_route.py ours_otlp health          # top functions by own time
    python bench/profile_route.py ours_otlp@all general --sort cumtime --top 30

CONFIG is any configuration or variant of bench/_peer_worker.py; ROUTE one of its ROUTES. The Sentry
DSN and the OTLP endpoint point at loopback receivers in this process, as in bench/overhead.py.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("route")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    import _peer_worker
    from _asgi import call

    from otel_sentry.testing import OtlpReceiver, SentryIngest

    with SentryIngest() as ingest, OtlpReceiver() as otlp:
        flush = _peer_worker.configure(args.config, ingest.dsn(public_key="profile"), otlp.endpoint)
        import _peer_app

        method, path, body, auth, _status = _peer_worker.ROUTES[args.route]

        async def run(n: int) -> None:
            for _ in range(n):
                await call(_peer_app.app, method, path, body, auth)

        asyncio.run(run(max(50, args.requests // 10)))  # warm-up
        flush()
        cpu = time.process_time()
        asyncio.run(run(args.requests))
        flush()
        per_request = (time.process_time() - cpu) / args.requests * 1e6
        print(f"{args.config} {args.route}: {per_request:.0f} µs CPU/request")
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(run(args.requests))
        flush()
        profile.disable()
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
