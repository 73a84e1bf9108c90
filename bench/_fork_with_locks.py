"""Helper of bench/faults.py: fork N times while another thread holds the transport's and the
exporter's locks, right after the parent queued an event (its worker is busy delivering it); each
child must deliver its own event within 5 s and exit. Prints JSON figures."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otel_sentry._exporter import SentrySpanExporter
from otel_sentry._runtime import Runtime
from otel_sentry._settings import load_settings
from otel_sentry._transport import ERROR
from otel_sentry.testing import SentryIngest
from tests.test_transport import envelope


def main(forks: int) -> None:
    deadlocks = ok = 0
    with SentryIngest() as ingest:
        runtime = Runtime(load_settings({}, dsn=ingest.dsn()))
        transport = runtime.transports[0]
        exporter = SentrySpanExporter(runtime=runtime)
        for n in range(forks):
            transport.submit(envelope(note=f"parent-{n}"), ERROR)
            held, release = threading.Event(), threading.Event()

            def hold(held: threading.Event, release: threading.Event) -> None:
                with transport._lock, exporter._lock:
                    held.set()
                    release.wait(10)

            holder = threading.Thread(target=hold, args=(held, release))
            holder.start()
            held.wait(5)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    exporter.export([])
                    good = transport.submit(envelope(note=f"child-{os.getpid()}"), ERROR) and transport.flush(
                        5
                    )
                    code = 0 if good else 2
                finally:
                    os._exit(code)
            release.set()
            holder.join()
            deadline = time.monotonic() + 10
            status = None
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.01)
            else:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                deadlocks += 1
                continue
            ok += int(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        transport.flush(10)
        ids = Counter(e["event_id"] for e in ingest.events())
        print(
            json.dumps(
                {
                    "forks": forks,
                    "children_ok": ok,
                    "deadlocks": deadlocks,  # children that never exited
                    "hung": forks - ok - deadlocks,  # children whose delivery did not complete in 5 s
                    "delivered": len(ingest.events()),
                    "duplicates": sum(n - 1 for n in ids.values()),
                }
            )
        )
        runtime.shutdown(1.0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
