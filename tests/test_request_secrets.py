"""The request-secrets matcher and its lifetime: every encoded form replaced inside any text, short
values left alone, memory bounded, entries kept while the request's spans are open and forgotten
after, and nothing at all for requests without credentials."""

from __future__ import annotations

import base64
import json
import string
import urllib.parse
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_sentry import _request_secrets as rs
from otel_sentry._redact import REDACTED

ENCODERS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "url": lambda v: urllib.parse.quote(v, safe=""),
    "url_plus": urllib.parse.quote_plus,
    "url_lower": lambda v: rs._lower_percent(urllib.parse.quote(v, safe="")),
    "json": lambda v: json.dumps(v)[1:-1],
    "json_ascii": lambda v: json.dumps(v, ensure_ascii=True)[1:-1],
    "repr": lambda v: repr(v)[1:-1],
    "repr_of_json": lambda v: repr(json.dumps({"k": v}))[1:-1],
    "json_of_json": lambda v: json.dumps(json.dumps({"k": v}))[1:-1],
    "hex": lambda v: v.encode().hex(),
    "HEX": lambda v: v.encode().hex().upper(),
}
secrets_text = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x24F, blacklist_categories=("Cs",)),
    min_size=rs.MIN_LENGTH,
    max_size=40,
).filter(lambda s: s.strip() == s and len(set(s)) >= 4)
surroundings = st.text(alphabet=string.ascii_letters + string.digits + " :=/._-", max_size=30)


def _with(values: list[str]) -> rs.RequestSecrets:
    secrets = rs.RequestSecrets()
    for value in values:
        secrets.add(value)
    return secrets


@settings(max_examples=300, deadline=None)
@given(secret=secrets_text, how=st.sampled_from(sorted(ENCODERS)), before=surroundings, after=surroundings)
def test_every_encoding_is_replaced_inside_any_text(secret: str, how: str, before: str, after: str) -> None:
    encoded = ENCODERS[how](secret)
    redacted = _with([secret]).redact_text(f"{before}{encoded}{after}")
    assert encoded not in redacted
    assert REDACTED in redacted


@settings(max_examples=300, deadline=None)
@given(secret=secrets_text, prefix=st.binary(max_size=5), suffix=st.binary(max_size=5))
def test_base64_at_any_alignment_inside_a_bigger_blob(secret: str, prefix: bytes, suffix: bytes) -> None:
    data = secret.encode()
    blob = base64.b64encode(prefix + data + suffix).decode()
    redacted = _with([secret]).redact_text(f"blob={blob}")
    # what is left of the blob no longer decodes to the secret
    core = blob[-(-len(prefix) * 4 // 3) :][: len(data) * 4 // 3 - 3]
    assert len(core) < 8 or core not in redacted
    if len(data) >= 8:
        assert REDACTED in redacted


def test_basic_authorization_yields_the_three_forms() -> None:
    basic = base64.b64encode(b"admin:Tr0ub4dor&3").decode()
    secrets = rs.collect({"headers": [(b"authorization", f"Basic {basic}".encode())]})
    assert secrets.values == [basic, "admin:Tr0ub4dor&3", "Tr0ub4dor&3"]
    assert secrets.redact_text("auth_string = 'admin:Tr0ub4dor&3'") == f"auth_string = '{REDACTED}'"


def test_carriers_and_what_is_not_a_secret() -> None:
    scope = {
        "headers": [
            (b"authorization", b"Bearer eyJhbGciOi.payload.sig"),
            (b"cookie", b"theme=dark; session=s%3Aabc123def; lang=en"),
            (b"x-api-key", b"gw_live_0123456789"),
            (b"x-request-id", b"req-0123456789abcdef"),  # not a credential header
            (b"user-agent", b"python-httpx/0.28"),
        ],
        "query_string": b"page=20000&access_token=q-tok-98765&sort=created_at",
    }
    values = rs.collect(scope).values
    assert "eyJhbGciOi.payload.sig" in values
    assert "s%3Aabc123def" in values and "s:abc123def" in values
    assert "gw_live_0123456789" in values and "q-tok-98765" in values
    assert "dark" not in values and "en" not in values  # under MIN_LENGTH: not matched alone
    assert "req-0123456789abcdef" not in values and "20000" not in values and "created_at" not in values


def test_short_values_are_never_matched_alone() -> None:
    secrets = _with(["12345", "pass"])
    assert not secrets
    assert secrets.redact_text("port 12345 pass") == "port 12345 pass"


def test_structures_nested_keys_numbers_and_unchanged_identity() -> None:
    secrets = _with(["4242424242424242", "Sup3rSecretPw"])
    event: dict[str, Any] = {"a": [{"b": ("x Sup3rSecretPw y", 4242424242424242)}], "Sup3rSecretPw": 1}
    redacted = secrets.redact(event)
    assert json.dumps(redacted).count(REDACTED) == 3
    clean = {"a": [1, "nothing here"], "b": {"c": 2.5}}
    assert secrets.redact(clean) is clean  # no copy when nothing matched


def test_body_fields_under_sensitive_names_only() -> None:
    secrets = rs.RequestSecrets()
    rs.learn_fields(
        secrets, {"user": {"name": "ann-the-user", "password": "pw-0987654"}, "items": [{"token": 1234567}]}
    )
    assert secrets.values == ["pw-0987654", "1234567"]


def test_values_per_request_are_bounded() -> None:
    secrets = _with([f"value-{i:04d}" for i in range(rs.MAX_VALUES + 10)])
    assert len(secrets.values) == rs.MAX_VALUES
    assert rs.counters["request_secrets.values_over_limit"] >= 10


def test_registry_is_bounded_and_counts_evictions() -> None:
    registry = rs._Registry(max_traces=8, linger=60)
    before = rs.counters["request_secrets.evicted"]
    for trace_id in range(20):
        registry.hold(trace_id, _with([f"secret-{trace_id}"]))
        registry.release(trace_id)
    assert len(registry) == 8
    assert rs.counters["request_secrets.evicted"] - before == 12
    assert registry.get(19) is not None and registry.get(0) is None


def test_entries_linger_after_release_then_go(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(rs.time, "monotonic", lambda: clock[0])
    registry = rs._Registry(max_traces=100, linger=120)
    registry.hold(1, _with(["secret-one"]))
    registry.hold(1, _with(["secret-one"]), span_id=7)  # a background span, still open
    registry.release(1)  # the request ended
    clock[0] += 500
    registry.release(2)  # any later activity sweeps
    assert registry.get(1) is not None  # its span is still open
    registry.release(1, span_id=7)
    clock[0] += 119
    registry.release(2)
    assert registry.get(1) is not None  # lingering for the batch processors
    clock[0] += 2
    registry.release(2)
    assert registry.get(1) is None


def test_spans_exported_after_the_request_are_redacted() -> None:
    """The processor holds the entry for spans started in the request's context (background work);
    the export step, later and on another thread in production, still finds the secrets."""
    rs.registry.clear()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(rs.RequestSecretsProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    scope = {"headers": [(b"authorization", b"Bearer tok_abcdef123456")]}
    with tracer.start_as_current_span("server"):
        token = rs.start_request(scope)
        background = tracer.start_span("background")
        rs.end_request(token)
    background.set_attribute("job.arg", "called with tok_abcdef123456")
    background.end()
    assert len(rs.registry) == 1
    exported = rs.redact_spans(exporter.get_finished_spans())
    assert [dict(s.attributes or {}).get("job.arg") for s in exported if s.name == "background"] == [
        f"called with {REDACTED}"
    ]
    rs.registry.clear()


def test_requests_without_credentials_create_nothing() -> None:
    rs.registry.clear()
    scope = {"headers": [(b"accept", b"application/json")], "query_string": b"page=2"}
    assert rs.start_request(scope) is None
    assert rs.current() is None and len(rs.registry) == 0
    spans: list[Any] = ["a span"]
    assert rs.redact_spans(spans) is spans  # the exporter step returns at once
    event = {"message": "x"}
    assert rs.redact_event(event) is event
