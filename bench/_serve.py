"""One configuration of bench/overhead.py behind uvicorn on 127.0.0.1, for the end-to-end load.

    python bench/_serve.py CONFIG DSN OTLP_ENDPOINT PORT

Set up exactly as the in-process worker does (bench/_peer_worker.py), then served by one uvicorn
worker without access log (the same for every configuration).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvicorn
from _peer_worker import configure


def main() -> None:
    config, dsn, otlp, port = sys.argv[1:5]
    configure(config, dsn, otlp)
    import _peer_app

    uvicorn.run(_peer_app.app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
