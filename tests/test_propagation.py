"""The sentry propagator next to W3C's: continuing traces from either format, propagating both, and a
dynamic sampling context that the head sets once and everybody downstream keeps."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, attach, detach
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_sentry._dsc import INCOMING_KEY, derived_sample_rand, parse_baggage
from otel_sentry._propagator import SentryPropagator, install_global_propagators, parse_sentry_trace
from otel_sentry._rules import Rules
from otel_sentry._runtime import Runtime, set_runtime
from otel_sentry._sampler import OtelSentrySampler
from otel_sentry._settings import load_settings

TRACE = "771a43a4192642f0b136d5159a501700"
SPAN = "b7ad6b7169203331"
W3C_TRACE = "0af7651916cd43dd8448eb211c80319c"
PROPAGATOR = CompositePropagator(
    [TraceContextTextMapPropagator(), W3CBaggagePropagator(), SentryPropagator()]
)


@pytest.fixture(autouse=True)
def runtime() -> Iterator[Runtime]:
    """A head with a DSN, a release and an environment (what its DSC is made of)."""
    rt = Runtime(
        load_settings({}, dsn="http://headkey@127.0.0.1:1/7", release="svc@2.0", environment="prod"),
        transports=[],
    )
    set_runtime(rt)
    yield rt
    set_runtime(None)


def tracer(environment: str = "prod", record_unsampled: bool = False) -> Any:
    sampler = OtelSentrySampler(Rules(), environment, record_unsampled=record_unsampled)
    return TracerProvider(sampler=sampler).get_tracer("test")


def outgoing(context: Any = None) -> dict[str, str]:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context)
    return carrier


# -- sentry-trace --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (f"{TRACE}-{SPAN}-1", (int(TRACE, 16), int(SPAN, 16), True)),
        (f"{TRACE}-{SPAN}-0", (int(TRACE, 16), int(SPAN, 16), False)),
        (f"  {TRACE}-{SPAN}  ", (int(TRACE, 16), int(SPAN, 16), None)),
        (f",{TRACE}-{SPAN}-1, {W3C_TRACE}-{SPAN}-0", (int(TRACE, 16), int(SPAN, 16), True)),
        (f"{TRACE}", None),
        (f"{TRACE.upper()}-{SPAN}-1", None),
        (f"{'0' * 32}-{SPAN}-1", None),
        (f"{TRACE}-{SPAN}-2", None),
        ("", None),
    ],
)
def test_sentry_trace_parsing(header: str, parsed: Any) -> None:
    assert parse_sentry_trace(header) == parsed


def test_a_sentry_trace_alone_continues_the_trace_with_its_frozen_context() -> None:
    headers = {
        "sentry-trace": f"{TRACE}-{SPAN}-1",
        "baggage": f"sentry-trace_id={TRACE},sentry-public_key=up,sentry-sample_rate=0.5,other=x",
    }
    context = PROPAGATOR.extract(headers)
    span_context = get_current_span(context).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (int(TRACE, 16), int(SPAN, 16))
    assert span_context.is_remote and span_context.trace_flags.sampled
    incoming = context.get(INCOMING_KEY)
    assert incoming.sampled is True and incoming.frozen
    # the one addition Sentry makes to a frozen DSC: a sample_rand consistent with the decision
    assert incoming.dsc["public_key"] == "up" and 0 <= float(incoming.dsc["sample_rand"]) < 0.5
    assert baggage.get_all(context) == {
        "sentry-trace_id": TRACE,
        "sentry-public_key": "up",
        "sentry-sample_rate": "0.5",
        "other": "x",
    }


def test_w3c_and_sentry_trace_of_the_same_trace_keep_w3cs_parent_and_sentrys_deferral() -> None:
    headers = {
        "traceparent": f"00-{TRACE}-{SPAN}-00",
        "tracestate": "vendor=1",
        "sentry-trace": f"{TRACE}-{SPAN}",
    }
    context = PROPAGATOR.extract(headers)
    span_context = get_current_span(context).get_span_context()
    assert span_context.trace_state.get("vendor") == "1"
    assert context.get(INCOMING_KEY).sampled is None  # deferred: the rules here decide


def test_when_they_disagree_traceparent_wins_and_the_other_traces_dsc_is_dropped() -> None:
    headers = {
        "traceparent": f"00-{W3C_TRACE}-{SPAN}-01",
        "sentry-trace": f"{TRACE}-{SPAN}-0",
        "baggage": f"sentry-trace_id={TRACE},sentry-public_key=up",
    }
    context = PROPAGATOR.extract(headers)
    assert get_current_span(context).get_span_context().trace_id == int(W3C_TRACE, 16)
    incoming = context.get(INCOMING_KEY)
    assert incoming.sampled is True and not incoming.frozen


def test_nothing_to_continue_leaves_the_context_alone() -> None:
    assert SentryPropagator().extract({"baggage": "sentry-trace_id=abc"}, Context()) == Context()


# -- outgoing --------------------------------------------------------------------------------------


def head_span(route: str, sampled: bool, record_unsampled: bool = False) -> Any:
    """Start server spans until the rules give the wanted decision (rates are per trace id)."""
    t = tracer(record_unsampled=record_unsampled)
    while True:
        span = t.start_span("GET", kind=SpanKind.SERVER, attributes={"http.route": route})
        if span.get_span_context().trace_flags.sampled is sampled:
            return span
        span.end()


@pytest.mark.parametrize("sampled", [True, False])
def test_the_head_emits_both_formats_and_its_complete_dsc(sampled: bool) -> None:
    from opentelemetry.trace import set_span_in_context

    span = head_span("/v1/chat/completions", sampled)
    context = baggage.set_baggage("tenant", "acme corp", set_span_in_context(span))
    headers = outgoing(context)
    ids = span.get_span_context()
    flag = "1" if sampled else "0"
    assert headers["traceparent"].startswith(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-")
    assert int(headers["traceparent"][-2:], 16) & 1 == sampled  # (bit 2: W3C's "random trace id")
    assert headers["sentry-trace"] == f"{ids.trace_id:032x}-{ids.span_id:016x}-{flag}"
    dsc, others = parse_baggage(headers["baggage"])
    assert dsc == {
        "trace_id": f"{ids.trace_id:032x}",
        "public_key": "headkey",
        "release": "svc@2.0",
        "environment": "prod",
        "transaction": "/v1/chat/completions",
        "sample_rate": "0.2",
        "sample_rand": f"{derived_sample_rand(ids.trace_id):.6f}",
        "sampled": "true" if sampled else "false",
    }
    assert others == ["tenant=acme%20corp"]  # W3C baggage kept beside Sentry's items
    assert (float(dsc["sample_rand"]) < 0.2) is sampled


def test_sentry_sdk_reads_what_we_send() -> None:
    from sentry_sdk.tracing_utils import Baggage, extract_sentrytrace_data

    span = head_span("/api/admin/users", True)
    from opentelemetry.trace import set_span_in_context

    headers = outgoing(set_span_in_context(span))
    data = extract_sentrytrace_data(headers["sentry-trace"])
    assert data == {
        "trace_id": f"{span.get_span_context().trace_id:032x}",
        "parent_span_id": f"{span.get_span_context().span_id:016x}",
        "parent_sampled": True,
    }
    items = Baggage.from_incoming_header(headers["baggage"]).sentry_items
    assert items["sample_rate"] == "0.5" and items["transaction"] == "/api/admin/users"
    assert items == parse_baggage(headers["baggage"])[0]


def test_a_continued_trace_forwards_the_frozen_dsc_unchanged_and_keeps_the_decision() -> None:
    upstream = (
        f"sentry-trace_id={TRACE},sentry-public_key=up,sentry-release=up%401,"
        "sentry-sample_rate=0.25,sentry-sample_rand=0.123456,sentry-sampled=false,vendor=v"
    )
    for record_unsampled in (False, True):
        # as the instrumentations do (and W3C baggage needs): the extracted context is attached
        token = attach(PROPAGATOR.extract({"sentry-trace": f"{TRACE}-{SPAN}-0", "baggage": upstream}))
        try:
            t = tracer("development", record_unsampled)  # development samples all: not what is continued
            with t.start_as_current_span(
                "GET", kind=SpanKind.SERVER, attributes={"http.route": "/x"}
            ) as server:
                assert not server.get_span_context().trace_flags.sampled
                with t.start_as_current_span("client", kind=SpanKind.CLIENT):
                    headers = outgoing()
        finally:
            detach(token)
        assert headers["sentry-trace"].endswith("-0") and int(headers["traceparent"][-2:], 16) & 1 == 0
        dsc, others = parse_baggage(headers["baggage"])
        assert dsc == {
            "trace_id": TRACE,
            "public_key": "up",
            "release": "up@1",
            "sample_rate": "0.25",
            "sample_rand": "0.123456",
            "sampled": "false",
        }
        assert others == ["vendor=v"]


def test_a_sentry_trace_without_sentry_baggage_gets_this_services_dsc() -> None:
    token = attach(PROPAGATOR.extract({"sentry-trace": f"{TRACE}-{SPAN}-1"}))
    try:
        with tracer().start_as_current_span("GET", kind=SpanKind.SERVER, attributes={"http.route": "/x"}):
            dsc, _ = parse_baggage(outgoing()["baggage"])
    finally:
        detach(token)
    assert dsc["trace_id"] == TRACE and dsc["public_key"] == "headkey" and dsc["sampled"] == "true"


def test_no_valid_span_no_headers() -> None:
    assert outgoing(Context()) == {}


# -- the global propagator ---------------------------------------------------------------------------


def test_sentry_means_ours_although_sentry_sdk_registers_the_name_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    previous = propagate.get_global_textmap()
    try:
        with caplog.at_level(logging.WARNING, logger="otel_sentry"):
            installed = install_global_propagators({"OTEL_PROPAGATORS": "tracecontext, baggage,sentry,nope"})
        assert installed == ["tracecontext", "baggage", "sentry"]
        kinds = [type(p) for p in propagate.get_global_textmap()._propagators]  # type: ignore[attr-defined]
        assert kinds == [TraceContextTextMapPropagator, W3CBaggagePropagator, SentryPropagator]
        assert "'nope'" in caplog.text and "OTEL_PROPAGATORS" in caplog.text
        assert propagate.get_global_textmap().fields >= {"traceparent", "baggage", "sentry-trace"}
    finally:
        propagate.set_global_textmap(previous)


def test_sampling_is_consistent_across_a_chain_of_services() -> None:
    """Head → service B (deferred sentry-trace) → C: every hop ends up with the head's decision."""
    rng = random.Random(9)
    for _ in range(300):
        head = tracer()
        trace_id_hint = rng.getrandbits(128)
        with head.start_as_current_span(
            "GET", kind=SpanKind.SERVER, attributes={"http.route": f"/r{trace_id_hint % 7}"}
        ) as root:
            headers = outgoing()
        for hop_environment in ("prod", "development"):
            downstream = tracer(hop_environment)
            context = PROPAGATOR.extract(headers)
            with downstream.start_as_current_span("GET", context=context, kind=SpanKind.SERVER) as hop:
                assert hop.get_span_context().trace_id == root.get_span_context().trace_id
                assert hop.get_span_context().trace_flags == root.get_span_context().trace_flags
