"""A FastAPI app for load under faults (bench/faults.py): errors, successes, and its own delivery figures.

``/boom/{n}`` fails the seeds' way (``raise HTTPException(500) from e``), which keeps the connection
alive; ``/ok/{n}`` succeeds; ``/__stats`` reports otel_sentry's delivery accounting and the process's
resident memory, read by the bench (an app would not expose this).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

app = FastAPI()


@app.get("/ok/{n}")
async def ok(n: int) -> dict[str, int]:
    return {"n": n}


@app.get("/boom/{n}")
async def boom(n: int) -> None:
    try:
        {}["missing"]
    except KeyError as e:
        raise HTTPException(status_code=500, detail=f"lookup {n} failed") from e


@app.get("/__stats")
async def stats() -> dict[str, Any]:
    from otel_sentry._runtime import get_runtime

    runtime = get_runtime()
    assert runtime is not None
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "rss_kib": rss,
        "counters": dict(runtime.counters),
        "transports": [
            {
                "destination": s.destination,
                "submitted": dict(s.submitted),
                "delivered": dict(s.delivered),
                "dropped": [[reason, cat, n] for (reason, cat), n in s.dropped.items()],
                "requests": dict(s.requests),
                "queued": s.queued,
                "queued_bytes": sum(s.queued_bytes.values()),
                "spooled": s.spooled,
                "pending_reports": s.pending_reports,
                "reported": s.reported,
            }
            for s in runtime.stats()
        ],
    }
