"""Generated matrix: every credential carrier x every place it reappears x every encoding, under a real
server (``opentelemetry-instrument uvicorn``) exporting traces and logs to OTLP and Sentry. Every byte
the loopback receivers got is searched for each planted value: 0 leaks. Benign values planted beside
them must arrive intact (false positives).

The values are random (fixed seed), with characters that URL and JSON encodings change; the names
they reappear under are random too, on no sensitive-name list, so only "the request carried it"
can catch them.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import string
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from otel_sentry._redact import is_sensitive_name
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
CARRIERS = (
    "basic",
    "basic_pair",
    "basic_b64",
    "bearer",
    "cookie",
    "apikey",
    "query",
    "json",
    "form",
    "multipart",
)
PLACES = ("locals", "message", "log", "span_attr", "nested", "repr", "background")
ENCODINGS = ("raw", "url", "json", "base64", "hex")
COOKIE_SAFE = string.ascii_letters + string.digits + "!#$*+-.^_~"
SPECIAL = '/=?@"\\'  # changed by URL and JSON encoding (not allowed in a cookie value)


def _secret(rng: random.Random, carrier: str) -> str:
    alphabet = COOKIE_SAFE if carrier == "cookie" else COOKIE_SAFE + SPECIAL
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 24)))
        if len(set(value)) >= 6 and value.strip() == value:
            return value


def _name(rng: random.Random) -> str:
    while True:
        name = rng.choice(string.ascii_lowercase) + "".join(rng.choices(string.ascii_lowercase + "_", k=7))
        if not is_sensitive_name(name):
            return name


def _request(carrier: str, secret: str, rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """httpx keyword arguments planting the secret; the values the request itself carries."""
    user = "admin"
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    kwargs: dict[str, Any] = {"headers": {}}
    if carrier.startswith("basic"):
        kwargs["headers"]["Authorization"] = f"Basic {basic}"
    elif carrier == "bearer":
        kwargs["headers"]["Authorization"] = f"Bearer {secret}"
    elif carrier == "cookie":
        kwargs["headers"]["Cookie"] = f"theme=dark; session={secret}"
    elif carrier == "apikey":
        kwargs["headers"]["X-Api-Key"] = secret
    elif carrier == "query":
        kwargs["params"] = {"access_token": secret, "page": "2"}
    elif carrier == "json":
        kwargs["json"] = {"credentials": {"user": user, "password": secret}, "page": 2}
    elif carrier == "form":
        kwargs["data"] = {"client_id": "svc", "client_secret": secret}
    elif carrier == "multipart":
        kwargs["data"] = {"client_id": "svc", "client_secret": secret}
        kwargs["files"] = {"report": ("report.csv", b"id,amount\n1,20\n", "text/csv")}
    carried = {"basic_pair": f"{user}:{secret}", "basic_b64": basic}.get(carrier, secret)
    return kwargs, [carried]


def _planted(value: str, how: str) -> list[str]:
    """What a leak would look like in the received bytes: the planted text and its escaped forms."""
    if how == "url":
        planted = urllib.parse.quote(value, safe="")
    elif how == "json":
        planted = json.dumps({"k": value})
    elif how == "base64":
        blob = f"{'x' * (len(value) % 3)}cred={value};".encode()
        planted = base64.b64encode(blob).decode()
    elif how == "hex":
        planted = value.encode().hex()
    else:
        planted = value
    found = {value, planted, json.dumps(value)[1:-1], json.dumps(planted)[1:-1], repr(planted)[1:-1]}
    found.add(json.dumps(repr(planted)[1:-1])[1:-1])
    if how == "base64":  # the secret's own base64 run inside the blob (bytes after the prefix)
        offset = len(value) % 3 + len("cred=")
        found.add(planted[-(-offset * 4 // 3) :][: len(value) * 4 // 3 - 3])
    return sorted(f for f in found if len(f) >= 6)


def test_request_secrets_never_leave_in_any_form(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("OTEL_SENTRY_REQSECRETS_SEED", "21")))
    cases = list(itertools.product(CARRIERS, PLACES, ENCODINGS))
    planted: list[tuple[str, str, str, str]] = []  # (form, carrier, place, encoding)
    benign: list[str] = []
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_LOGS_EXPORTER": "otlp,sentry",
            "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_TRACES_SAMPLER": "always_on",
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_SENTRY_QUEUE_MAX_EVENTS": "100000",
            "OTEL_SENTRY_QUEUE_MAX_BYTES": str(2**30),
        }
        with AppProcess("reqsecrets_app", cwd=APPS, env=env, ready_path="/health") as app:
            for carrier, place, how in cases:
                secret = _secret(rng, carrier)
                kwargs, carried = _request(carrier, secret, rng)
                order = uuid.uuid4().hex
                kwargs["headers"].update(
                    {
                        "x-enc": how,
                        "x-place": place,
                        "x-name": _name(rng),
                        "x-benign": order,
                        "Connection": "close",
                    }
                )
                response = app.client.post(f"/r/{carrier}", **kwargs)
                assert response.status_code == (200 if place == "background" else 500), response.text
                benign.append(order)
                for value in {secret, *carried}:
                    planted += [
                        (form, carrier, place, how) for form in _planted(value, how) if len(value) >= 6
                    ]
            assert app.stop() == 0, app.output()
        failing = sum(1 for _, place, _ in cases if place != "background")
        assert ingest.wait_for(lambda i: len(i.events()) >= failing, 30)
        assert receiver.wait_for(lambda r: len(r.spans()) >= len(cases), 30)
        assert receiver.logs_count > 0 and ingest.items("log"), "the log path was not exercised"
        sentry_bytes, otlp_bytes = ingest.raw_bytes(), receiver.raw_bytes()

    leaks = sorted(
        {
            (backend, carrier, place, how, form)
            for form, carrier, place, how in planted
            for backend, blob in (("sentry", sentry_bytes), ("otlp", otlp_bytes))
            if form.encode() in blob
        }
    )
    assert leaks == [], f"{len(leaks)} leaks, e.g. {leaks[:8]}"
    lost = [
        value for value in benign if value.encode() not in sentry_bytes or value.encode() not in otlp_bytes
    ]
    print(
        f"\nrequest secrets: {len(cases)} requests ({len(CARRIERS)} carriers x {len(PLACES)} places x "
        f"{len(ENCODINGS)} encodings), {len(planted)} forms searched, 0 leaks; "
        f"benign values lost: {len(lost)}/{len(benign)}"
    )
    assert lost == []
