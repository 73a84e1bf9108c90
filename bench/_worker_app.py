"""The bench app for ``uvicorn --workers N`` (bench/growth.py): each worker process sets its
configuration up when it imports this module, as ``opentelemetry-instrument``'s sitecustomize would
in every worker. BENCH_CONFIG, BENCH_DSN, BENCH_OTLP name the configuration (bench/_peer_worker.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peer_worker import configure

configure(os.environ["BENCH_CONFIG"], os.environ["BENCH_DSN"], os.environ["BENCH_OTLP"])

from _peer_app import app  # noqa: E402

__all__ = ["app"]
