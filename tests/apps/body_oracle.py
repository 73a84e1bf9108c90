"""sentry-sdk's FastAPI integration on the request bodies of tests/test_request_body.py: the oracle.

Run as a script with the cases as JSON on stdin; prints, per case, the ``request.data`` and the
``_meta.request.data`` of the error event sentry-sdk would send (captured from its envelopes).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import sentry_sdk
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sentry_sdk.transport import Transport

events: list[dict[str, Any]] = []


class Capture(Transport):
    def capture_envelope(self, envelope: Any) -> None:
        for item in envelope.items:
            if item.type == "event":
                events.append(item.payload.json)


def main() -> None:
    cases = json.load(sys.stdin)
    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=Capture, default_integrations=True)
    app = FastAPI()

    @app.post("/body")
    async def body(request: Request) -> None:
        await request.body()
        raise RuntimeError("body route failed")

    client = TestClient(app, raise_server_exceptions=False)
    results = []
    for case in cases:
        events.clear()
        client.post("/body", content=case["body"].encode("latin-1"), headers=case["headers"])
        sentry_sdk.flush()
        event = events[-1]
        results.append(
            {
                "data": event.get("request", {}).get("data"),
                "meta": (event.get("_meta") or {}).get("request", {}).get("data"),
            }
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
