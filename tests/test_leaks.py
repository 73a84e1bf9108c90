"""Property-based leak test: secrets planted everywhere, every byte the backends receive searched.

Each example is one request to an app under the distro, exporting ``otlp,sentry``. A *recognisable*
secret (an ``sk-`` key, a JWT, an AWS key, a Luhn-valid card number, a live key) is planted in one of
its raw, URL-encoded, JSON-escaped or base64 forms in headers, cookies, query, body, exception
message, span attributes and baggage; an *opaque* secret (a random password, recognisable only by its
name) under sensitive names everywhere. Then every byte received by the Sentry ingest and by the
OTLP receiver (decompressed) is searched for every form of every secret. Benign look-alikes (request
ids, order numbers that fail Luhn, model names, hashes) are planted too, to measure false positives.
"""

from __future__ import annotations

import base64
import json
import os
import string
import urllib.parse
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
EXAMPLES = int(os.environ.get("OTEL_SENTRY_LEAK_EXAMPLES", "400"))
ALNUM = string.ascii_letters + string.digits


def _luhn_complete(digits: str) -> str:
    for check in "0123456789":
        candidate = digits + check
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


tokens = st.text(alphabet=ALNUM, min_size=20, max_size=40).filter(lambda t: len(set(t)) >= 8)
recognisable = st.one_of(
    tokens.map(lambda t: f"sk-proj-{t}"),
    tokens.map(lambda t: f"sk_live_{t}"),
    tokens.map(lambda t: f"pk_test_{t}"),
    tokens.map(lambda t: f"gw_live_{t}"),
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
        lambda t: f"AKIA{t}"
    ),
    st.tuples(tokens, tokens, tokens).map(
        lambda p: f"eyJ{_b64url(json.dumps({'alg': 'HS256', 'k': p[0]}).encode())}.{p[1]}.{p[2]}"
    ),
    st.text(alphabet=string.digits, min_size=15, max_size=15).map(lambda d: _luhn_complete("4" + d[1:])),
)


def _distinct(value: str) -> bool:
    """Real secrets have entropy; '000000000000' would also match unrelated bytes (timestamps)."""
    return len(set(value)) >= 8


opaque = (
    st.text(alphabet=ALNUM + "!#$%*+-.", min_size=12, max_size=24)
    .filter(_distinct)
    .filter(
        lambda s: any(c.isdigit() for c in s) and any(c.isupper() for c in s) and any(c.islower() for c in s)
    )
)
ENCODINGS = ("raw", "url", "json", "base64")


def encode(secret: str, how: str) -> str:
    if how == "url":
        return urllib.parse.quote(secret, safe="")
    if how == "json":
        return json.dumps(secret)[1:-1]
    if how == "base64":
        return base64.b64encode(f"token={secret}".encode()).decode()
    return secret


def forms(secret: str) -> set[str]:
    found = {
        secret,
        urllib.parse.quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        urllib.parse.quote_plus(secret),
    }
    found.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    return {f for f in found if len(f) >= 8}


benign_values = st.one_of(
    st.uuids().map(str),
    st.integers(min_value=10**11, max_value=10**12 - 1).map(lambda n: str(n * 10 + 1)),  # order numbers
    st.sampled_from(["gpt-4-turbo", "claude-3-opus-20240229", "max_tokens=512", "prompt_tokens=77"]),
    st.binary(min_size=16, max_size=16).map(lambda b: b.hex()),  # digests
    st.text(alphabet="0123456789abcdef", min_size=8, max_size=16).map(lambda t: f"req_{t}"),
)


class LeakRun:
    def __init__(self) -> None:
        self.planted: list[tuple[str, str]] = []  # (secret, where)
        self.benign: list[str] = []


def test_no_secret_reaches_any_backend(tmp_path: Path) -> None:
    run = LeakRun()
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_TRACES_SAMPLER": "always_on",
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_SENTRY_QUEUE_MAX_EVENTS": "100000",  # every event must arrive to be searched
            "OTEL_SENTRY_QUEUE_MAX_BYTES": str(2**30),
        }
        with AppProcess("leaky_app", cwd=APPS, env=env, ready_path="/health") as app:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            )
            @given(secret=recognisable, password=opaque, how=st.sampled_from(ENCODINGS), benign=benign_values)
            def one_request(secret: str, password: str, how: str, benign: str) -> None:
                assume(password not in benign and benign not in password)  # a secret is not a benign value
                form = encode(secret, how)
                run.planted += [(secret, how), (password, "opaque")]
                run.benign.append(benign)
                response = app.client.post(
                    f"/leak?api_key={urllib.parse.quote(password)}&q={urllib.parse.quote(form)}&ref={benign}",
                    json={"secret": secret, "secret_form": form, "password": password, "benign": benign},
                    headers={
                        "Authorization": f"Bearer {secret}",
                        "Cookie": f"session={password}; theme=dark",
                        "X-Api-Key": password,
                        "X-Request-Id": benign,
                        "X-Upstream-Hint": form,
                        "baggage": f"user_token={urllib.parse.quote(password)},"
                        f"note={urllib.parse.quote(form)}",
                        "Connection": "close",
                    },
                )
                assert response.status_code == 500

            one_request()
            assert app.stop() == 0, app.output()
        assert ingest.wait_for(lambda i: len(i.events()) >= EXAMPLES, 30)
        assert receiver.wait_for(lambda r: len(r.spans()) >= EXAMPLES, 30)
        sentry_bytes, otlp_bytes = ingest.raw_bytes(), receiver.raw_bytes()

    leaks = []
    for secret, how in run.planted:
        for form in forms(secret):
            for backend, blob in (("sentry", sentry_bytes), ("otlp", otlp_bytes)):
                if form.encode() in blob:
                    leaks.append((backend, how, form))
    if leaks and os.environ.get("OTEL_SENTRY_LEAK_DEBUG"):
        for backend, _how, form in leaks[:5]:
            blob = sentry_bytes if backend == "sentry" else otlp_bytes
            at = blob.find(form.encode())
            print(backend, blob[max(0, at - 300) : at + 80])
    assert leaks == [], f"{len(leaks)} leaks, e.g. {leaks[:5]}"

    survived = sum(1 for value in run.benign if value.encode() in sentry_bytes)
    false_positive_rate = 1 - survived / len(run.benign)
    print(
        f"\nleak test: {len(run.planted)} secrets in {EXAMPLES} requests, 0 leaks; "
        f"benign look-alikes redacted: {false_positive_rate:.1%}"
    )
    assert false_positive_rate < 0.05
