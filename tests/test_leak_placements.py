"""Generated placements: every secret kind in every surrounding syntax, encoding and carrier of every
signal, through the real pipeline, and not one byte of any secret at the receivers.

The placements are the product signal-carrier x encoding x surrounding syntax x secret kind (a
syntax names the secret or not; a nameless syntax only carries the kinds recognisable by their shape),
not a list of cases: a carrier, syntax or encoding added here is tried with all the others. They are
sent in batches, many placements per request, to one app under a real server exporting traces, logs
and metrics over OTLP and errors, transactions and logs to Sentry (loopback receivers from
otel_sentry.testing), so the test takes one server start whatever the count. Benign look-alikes go
through the same carriers to measure what is redacted that should not be.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import string
import urllib.parse
from collections import Counter
from pathlib import Path

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
PER_REQUEST = 24
RANDOM = random.Random(14)
ALNUM = string.ascii_letters + string.digits

# where the app puts a text, and the signal(s) it reaches
CARRIERS = {
    "span_attribute": "traces",
    "span_attribute_name": "traces",
    "span_name": "traces",
    "span_event_name": "traces",
    "span_event_attribute": "traces",
    "log_message": "logs",
    "log_extra": "logs",
    "log_extra_name": "logs",
    "metric_attribute": "metrics",
    "breadcrumb": "sentry",
    "frame_local": "sentry",
    "frame_local_key": "sentry",
    "exception_message": "sentry",
}
# texts a careless app writes around a secret; {n} is a sensitive name, {s} the secret
NAMED_SYNTAX = {
    "pair": "{n}={s}",
    "single_quoted": "{n}='{s}'",
    "double_quoted": '{n}="{s}"',
    "dict_repr": "{{'{n}': '{s}', 'user': 'bob'}}",
    "dataclass_repr": "Config(host='db', {n}='{s}')",
    "json": '{{"{n}": "{s}"}}',
    "sql": "SELECT id FROM users WHERE {n} = '{s}'",
    "space": "{n} {s}",
    "colon": "{n}: {s}",
}
NAMELESS_SYNTAX = {"bare": "{s}", "glued": "cfg{s}", "prose": "retrying with {s} now"}
NAMES = ("password", "api_key", "private_key", "client_secret", "sessionid", "db_password")
ENCODINGS = ("raw", "url", "base64")


def _token(size: int) -> str:
    while True:
        text = "".join(RANDOM.choice(ALNUM) for _ in range(size))
        if (
            any(c.isdigit() for c in text)
            and any(c.isupper() for c in text)
            and any(c.islower() for c in text)
        ):
            return text


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


SECRET_KINDS = {
    # recognisable by shape, anywhere
    "sk_key": lambda: f"sk-proj-{_token(28)}",
    "jwt": lambda: (
        f"eyJ{_b64url(json.dumps({'alg': 'HS256', 'k': _token(12)}).encode())}.{_token(20)}.{_token(24)}"
    ),
    "aws": lambda: "AKIA" + "".join(RANDOM.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
    # recognisable only by the name next to it
    "opaque": lambda: _token(10) + "!" + _token(5),
    "hex32": lambda: hashlib.sha256(_token(16).encode()).hexdigest()[:40],
}
SHAPED = ("sk_key", "jwt", "aws")


def _encode(text: str, how: str) -> str:
    if how == "url":
        return urllib.parse.quote(text, safe="=")
    if how == "base64":
        return base64.b64encode(text.encode()).decode()
    return text


def placements() -> list[dict[str, str]]:
    """The product; each with the secret, the text planted and where."""
    result = []
    syntaxes = [(k, v, True) for k, v in NAMED_SYNTAX.items()] + [
        (k, v, False) for k, v in NAMELESS_SYNTAX.items()
    ]
    for carrier, (syntax, template, named), how, kind in itertools.product(
        CARRIERS, syntaxes, ENCODINGS, SECRET_KINDS
    ):
        if not named and kind not in SHAPED:
            continue  # nothing says it is a secret: not a placement any scrubber could know
        if how == "base64" and (kind not in SHAPED and syntax not in ("pair", "json")):
            continue  # base64 of free text: only a decoded pair or shaped key is recognisable
        secret = SECRET_KINDS[kind]()
        text = _encode(template.format(n=RANDOM.choice(NAMES), s=secret), how)
        result.append({"carrier": carrier, "text": text, "secret": secret, "how": how, "syntax": syntax})
    return result


BENIGN = {
    "uuid": lambda: str(__import__("uuid").UUID(int=RANDOM.getrandbits(128))),
    "order_id": lambda: "ord_" + str(RANDOM.randrange(10**11, 10**12)),
    "digest": lambda: "sha256 " + hashlib.sha256(_token(8).encode()).hexdigest(),
    "token_kind": lambda: (
        f"token_kind={RANDOM.choice(['access', 'refresh', 'id'])}-{RANDOM.randrange(10**6)}"
    ),
    "counts": lambda: f"max_tokens={RANDOM.randrange(1, 4096)} prompt_tokens={RANDOM.randrange(1, 999)}",
    "service": lambda: f"task-management-service-{RANDOM.randrange(10**6)}",
    "prose": lambda: f"password reset email sent to user {RANDOM.randrange(10**6)}",
}


def benign_placements() -> list[dict[str, str]]:
    carriers = ("span_attribute", "log_message", "log_extra", "metric_attribute", "exception_message")
    return [
        {"carrier": carrier, "text": make(), "kind": kind}
        for carrier, (kind, make) in itertools.product(carriers, BENIGN.items())
        for _ in range(3)
    ]


def test_no_generated_placement_reaches_any_receiver() -> None:
    planted = placements()
    benign = benign_placements()
    everything = planted + benign
    RANDOM.shuffle(everything)
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_LOGS_EXPORTER": "otlp,sentry",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ".*",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SENTRY_QUEUE_MAX_EVENTS": "100000",
            "OTEL_SENTRY_QUEUE_MAX_BYTES": str(2**30),
        }
        with AppProcess("placement_app", cwd=APPS, env=env, ready_path="/health") as app:
            batches = [everything[i : i + PER_REQUEST] for i in range(0, len(everything), PER_REQUEST)]
            for batch in batches:
                header = next((p for p in batch if "secret" in p), batch[0])
                response = app.client.post(
                    "/plant",
                    json=[{"carrier": p["carrier"], "text": p["text"]} for p in batch],
                    headers={  # the request's own carriers: headers, cookies, baggage, query
                        "X-Upstream-Note": header["text"][:4000].encode("ascii", "replace").decode(),
                        "Cookie": f"sessionid={urllib.parse.quote(header.get('secret', 'x'))}",
                        "baggage": f"sessionid={urllib.parse.quote(header.get('secret', 'x'))},tenant=acme",
                        "Connection": "close",
                    },
                    params={"q": header["text"][:1000]},
                )
                assert response.status_code == 500
            assert app.stop() == 0, app.output()[-3000:]
        assert ingest.wait_for(lambda i: len(i.events()) >= len(batches), 30)
        assert receiver.wait_for(lambda r: r.logs_count > 0 and r.metrics_count > 0, 30)
        blobs = {"sentry": ingest.raw_bytes(), "otlp": receiver.raw_bytes()}

    leaks: Counter[str] = Counter()
    examples = []
    for placement in planted:
        secret = placement["secret"]
        forms = {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}
        if placement["how"] == "base64":
            forms.add(placement["text"])
        for backend, blob in blobs.items():
            if any(form.encode() in blob for form in forms):
                leaks[f"{backend}:{placement['carrier']}:{placement['syntax']}:{placement['how']}"] += 1
                examples.append((backend, placement))
    per_signal = Counter(CARRIERS[p["carrier"]] for p in planted)
    lost = Counter(
        f"{p['carrier']}:{p['kind']}"
        for p in benign
        if p["text"].encode() not in blobs["sentry"] + blobs["otlp"]
    )
    survived = len(benign) - sum(lost.values())
    print(
        f"\nplacements: {len(planted)} ({dict(per_signal)}) + request carriers in {len(batches)} requests; "
        f"leaks: {sum(leaks.values())}; benign look-alikes redacted: {1 - survived / len(benign):.1%} "
        f"of {len(benign)} {dict(lost)}"
    )
    assert not leaks, (leaks.most_common(20), examples[:3])
    assert survived / len(benign) >= 0.99, lost
