"""Fork safety: pre-fork servers (uvicorn --workers, gunicorn --preload) and forks taken mid-export.

A forked child inherits the parent's memory (queues, counters, held locks) but none of its threads.
Every worker must deliver its own events, nothing queued in the parent may be sent twice, and a fork
taken while a delivery or export thread holds a lock must not deadlock the child.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from otel_sentry._exporter import SentrySpanExporter
from otel_sentry._runtime import Runtime
from otel_sentry._settings import load_settings
from otel_sentry._transport import ERROR, HttpDestination, Transport
from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.apps import AppProcess
from tests.test_transport import envelope

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}
BIN = Path(sys.executable).parent


def test_a_fork_taken_while_locks_are_held_neither_deadlocks_nor_duplicates(
    sentry_ingest: SentryIngest,
) -> None:
    t = Transport(HttpDestination.for_dsn(sentry_ingest.dsn(), timeout=2.0), backoff_base=0.05)
    runtime = Runtime(load_settings({}, dsn=sentry_ingest.dsn()), transports=[t])
    exporter = SentrySpanExporter(runtime=runtime)
    # Three events queued in the parent, waiting out a backoff when the fork happens.
    sentry_ingest.respond_with(503, {"Retry-After": "1"})
    for n in range(3):
        t.submit(envelope(note=f"parent-{n}"), ERROR)
    assert sentry_ingest.wait_for(lambda i: len(i.envelopes()) == 1, 5)
    held, release = threading.Event(), threading.Event()

    def hold_locks() -> None:
        with t._lock, exporter._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_locks)
    holder.start()
    assert held.wait(5)
    pid = os.fork()
    if pid == 0:  # the child: no holder thread here, and its locks must be fresh
        code = 1
        try:
            exporter.export([])  # takes the exporter lock
            ok = t.submit(envelope(note=f"child-{os.getpid()}"), ERROR) and t.flush(5)
            code = 0 if ok and t.stats().delivered[ERROR] == 1 else 2
        finally:
            os._exit(code)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert t.flush(5)
    messages = Counter(e["message"] for e in sentry_ingest.events())
    assert messages == Counter({"parent-0": 1, "parent-1": 1, "parent-2": 1, f"child-{pid}": 1})
    runtime.shutdown(1.0)


def pids_of(ingest: SentryIngest) -> Counter[int]:
    found: Counter[int] = Counter()
    for event in ingest.events():
        match = re.search(r"pid (\d+)", event["exception"]["values"][-1]["value"])
        assert match, event
        found[int(match.group(1))] += 1
    return found


def drive(app: AppProcess, workers: int, requests: int = 60) -> tuple[Counter[int], int]:
    """Error requests on fresh connections until every worker served some; (pids served, errors)."""
    served: Counter[int] = Counter()
    errors = 0
    deadline = time.monotonic() + 20
    while (len(served) < workers or errors < requests) and time.monotonic() < deadline:
        response = app.get(f"/boom/{errors}", headers=CLOSE)
        assert response.status_code == 500
        served[int(response.headers["x-worker-pid"])] += 1
        errors += 1
    return served, errors


def check_every_worker_exports_once(app: AppProcess, ingest: SentryIngest, workers: int) -> None:
    served, errors = drive(app, workers)
    assert len(served) == workers, (served, app.output())
    assert app.stop(signal.SIGTERM, timeout=20) == 0, app.output()  # what orchestrators send
    assert ingest.wait_for(lambda i: len(i.events()) >= errors, 10), app.output()
    events = ingest.events()
    ids = Counter(e["event_id"] for e in events)
    assert len(events) == errors and max(ids.values()) == 1, "duplicated or lost events"
    assert pids_of(ingest) == served  # each worker delivered exactly what it served
    transaction_pids = {t["contexts"]["otel"]["attributes"].get("worker.pid") for t in ingest.transactions()}
    assert set(served) <= transaction_pids, "a worker did not export its spans"
    relay.assert_valid(events[0])
    assert "Traceback" not in app.output().replace("RuntimeError", ""), app.output()


def worker_env(ingest: SentryIngest) -> dict[str, str]:
    return {
        "SENTRY_DSN": ingest.dsn(),
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SENTRY_SHUTDOWN_TIMEOUT": "5",
    }


def test_uvicorn_workers_each_export_their_own_events(sentry_ingest: SentryIngest) -> None:
    with AppProcess(
        "worker_app",
        cwd=APPS,
        env=worker_env(sentry_ingest),
        ready_path="/pid",
        extra_args=["--workers", "2"],
    ) as app:
        check_every_worker_exports_once(app, sentry_ingest, workers=2)


def test_gunicorn_preload_workers_each_export_their_own_events(sentry_ingest: SentryIngest) -> None:
    app = AppProcess("worker_app", cwd=APPS, env=worker_env(sentry_ingest), ready_path="/pid")
    # The distro, the app and the Sentry bridge are built once in the master, before it forks.
    app.command = [
        str(BIN / "opentelemetry-instrument"),
        str(BIN / "gunicorn"),
        "--preload",
        "-w",
        "4",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-b",
        f"127.0.0.1:{app.port}",
        "worker_app:app",
    ]
    with app:
        check_every_worker_exports_once(app, sentry_ingest, workers=4)


def test_the_delivery_worker_imports_nothing_so_a_fork_cannot_catch_it_mid_import() -> None:
    """A fork() taken while a thread imports a module leaves that module's import lock held forever
    in the child: had our worker imported anything lazily on its first send, the child's worker would
    block on the same import (bench/faults.py caught it with encodings.idna). Checked in a fresh
    interpreter, on the first delivery ever."""
    script = (
        "import sys, otel_sentry._transport as t\n"
        "from otel_sentry.testing import SentryIngest\n"
        "with SentryIngest() as ingest:\n"
        "    transport = t.Transport(t.HttpDestination.for_dsn(ingest.dsn(), timeout=5.0))\n"
        "    before = set(sys.modules)\n"
        "    transport.submit(b'{}\\n', t.ERROR)\n"
        "    assert transport.flush(5)\n"
        "    print(sorted(set(sys.modules) - before))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
