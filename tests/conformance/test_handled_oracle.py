"""``mechanism.handled`` as sentry-sdk reports it, with sentry-sdk itself as the oracle: the same app
(``apps/shapes.py``), the same failing requests, sentry-sdk's FastAPI/Starlette integrations in one
process, otel_sentry under ``opentelemetry-instrument`` in another; every exception both report must
carry the same ``handled`` flag."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conformance import harness
from tests.conformance.harness import APPS, Probe

ORACLE = r"""
import json, sys
import sentry_sdk
from starlette.testclient import TestClient

seen = []
sentry_sdk.init(
    dsn="http://public@127.0.0.1:9/1",
    before_send=lambda event, hint: seen.append(event) and None,
    traces_sample_rate=0,
)
import shapes, catchall
with TestClient(shapes.app, raise_server_exceptions=False) as client:
    for path in ("/boom", "/http-500", "/v2/items/13"):
        client.get(path)
with TestClient(catchall.app, raise_server_exceptions=False) as client:
    client.get("/crash")
print(json.dumps({e["exception"]["values"][-1]["type"]: e["exception"]["values"][-1]["mechanism"]["handled"]
                  for e in seen if e.get("exception")}))
"""


def test_handled_matches_sentry_sdk() -> None:
    oracle = json.loads(
        subprocess.run(
            [sys.executable, "-c", ORACLE], cwd=APPS, capture_output=True, text=True, timeout=120, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    ours: dict[str, bool] = {}
    for module, paths in (("shapes", ["/boom", "/http-500", "/v2/items/13"]), ("catchall", ["/crash"])):
        result = harness.run(module, [Probe("GET", p, 500) for p in paths])
        for event in result.events:
            value = event["exception"]["values"][-1]
            ours[value["type"]] = value["mechanism"]["handled"]
    assert oracle, "sentry-sdk reported nothing"
    assert {k: ours.get(k) for k in oracle} == oracle
