"""The same log records, for otel_sentry (``opentelemetry-instrument``, ``OTEL_LOGS_EXPORTER=sentry``) and
for sentry-sdk itself (``ORACLE_DSN`` set: ``sentry_sdk.init(enable_logs=True)``), to compare the Sentry
log items each sends."""

from __future__ import annotations

import logging
import os
import sys
import threading

if os.environ.get("ORACLE_DSN"):
    import sentry_sdk

    sentry_sdk.init(dsn=os.environ["ORACLE_DSN"], enable_logs=True, default_integrations=True)

# as uvicorn configures its loggers: own handler, not propagating to the root
for name in ("uvicorn.error", "uvicorn.access"):
    uvicorn_logger = logging.getLogger(name)
    uvicorn_logger.addHandler(logging.StreamHandler(sys.stderr))
    uvicorn_logger.setLevel(logging.INFO)
    uvicorn_logger.propagate = False
logging.getLogger("app").setLevel(logging.INFO)


def emit() -> None:
    app = logging.getLogger("app")
    app.info("user %s paid %d cents", "alice", 4200)
    app.warning("%(what)s is %(state)s", {"what": "disk", "state": "full"})
    app.error("a plain message")
    app.info("with an extra field", extra={"order_id": 7})
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4321)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/x", "1.1", 200
    )


worker = threading.Thread(target=emit, name="log-worker")
worker.start()
worker.join()
if os.environ.get("ORACLE_DSN"):
    sentry_sdk.flush(5)
