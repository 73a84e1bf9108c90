"""The otel_sentry sampler: the seeds' per-route rates, parent-based, Sentry's sample_rand semantics;
and errors are never sampled away."""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from otel_sentry._dsc import derived_sample_rand, facts_from_trace_state, frozen_dscs
from otel_sentry._propagator import SentryPropagator
from otel_sentry._rules import Rules
from otel_sentry._sampler import OtelSentrySampler, parse_sampler_arg, route_of, sampler_factory
from otel_sentry._sampling_metrics import SamplingCounters, register_metrics
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support import relay
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
SEEDS = Rules()


def decide(
    sampler: OtelSentrySampler,
    attributes: dict[str, Any],
    *,
    trace_id: Optional[int] = None,
    parent: Optional[Context] = None,
    kind: SpanKind = SpanKind.SERVER,
) -> Any:
    trace_id = trace_id if trace_id is not None else random.getrandbits(128)
    return sampler.should_sample(parent, trace_id, "GET", kind, attributes)


# -- the route the decision is made on ---------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "kind", "route"),
    [
        (
            {"http.route": "/v1/models/{model_id}", "url.path": "/v1/models/7"},
            SpanKind.SERVER,
            "/v1/models/{model_id}",
        ),
        ({"url.path": "/v1/chat/completions"}, SpanKind.SERVER, "/v1/chat/completions"),  # stable semconv
        ({"http.target": "/health?verbose=1"}, SpanKind.SERVER, "/health"),  # old semconv, query dropped
        ({"url.path": "/remote/api"}, SpanKind.CLIENT, None),  # another service's path is not a route here
        ({}, SpanKind.INTERNAL, None),
    ],
)
def test_the_route_is_the_template_else_the_server_path(
    attributes: dict[str, Any], kind: SpanKind, route: Optional[str]
) -> None:
    assert route_of(attributes, kind) == route


# -- head decisions ----------------------------------------------------------------------------

ROUTES = [
    ("/health", 0.0),
    ("/metrics", 0.0),
    ("/v1/chat/completions", 0.2),
    ("/v1/messages", 0.2),
    ("/v1/images/generations", 0.2),
    ("/api/admin/users", 0.5),
    ("/v1/models/{model_id}", 0.1),
]


@pytest.mark.parametrize("semconv", ["route", "stable-path", "old-target"])
def test_measured_rates_match_the_seeds_over_20000_traces_per_route(semconv: str) -> None:
    sampler = OtelSentrySampler(SEEDS, "production")
    rng = random.Random(4)
    n = 20_000
    for route, expected in ROUTES:
        key = {"route": "http.route", "stable-path": "url.path", "old-target": "http.target"}[semconv]
        sampled = sum(
            decide(sampler, {key: route}, trace_id=rng.getrandbits(128)).decision.is_sampled()
            for _ in range(n)
        )
        sigma = math.sqrt(n * expected * (1 - expected))
        assert abs(sampled - n * expected) <= 4.5 * sigma + 1e-9, (route, sampled / n, expected)


def test_the_decision_is_sample_rand_below_the_rate_and_the_rand_is_sentrys() -> None:
    sampler = OtelSentrySampler(SEEDS, "production")
    for trace_id in (random.getrandbits(128) for _ in range(2000)):
        rand = derived_sample_rand(trace_id)
        assert 0.0 <= rand < 1.0 and f"{rand:.6f}" == f"{float(f'{rand:.6f}'):.6f}"
        result = decide(sampler, {"http.route": "/v1/messages"}, trace_id=trace_id)
        assert result.decision.is_sampled() is (rand < 0.2)
        facts = facts_from_trace_state(result.trace_state)
        assert facts is not None
        assert (facts.sample_rate, facts.transaction) == (0.2, "/v1/messages")
        assert facts.rand_for(trace_id) == rand


def test_sampled_roots_keep_the_instrumentations_attributes_and_nothing_more() -> None:
    # other backends get the span stock OpenTelemetry makes; the rate travels in tracestate
    sampler = OtelSentrySampler(SEEDS, "development")
    result = decide(sampler, {"http.route": "/api/admin/users", "http.request.method": "GET"})
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(result.attributes) == {"http.route": "/api/admin/users", "http.request.method": "GET"}
    facts = facts_from_trace_state(result.trace_state)
    assert facts is not None and facts.sample_rate == 1.0


def test_development_samples_everything_even_health() -> None:
    sampler = OtelSentrySampler(SEEDS, "development")
    for route, _rate in ROUTES:
        assert decide(sampler, {"http.route": route}).decision is Decision.RECORD_AND_SAMPLE


def test_health_and_metrics_are_never_recorded_even_with_promotion() -> None:
    sampler = OtelSentrySampler(SEEDS, "production", record_unsampled=True)
    for route in ("/health", "/healthz", "/metrics", "/metrics/prometheus"):
        result = decide(sampler, {"http.route": route})
        assert result.decision is Decision.DROP and not result.attributes
    # other unsampled traces are recorded (not exported) so that an error can promote them
    decisions = Counter(decide(sampler, {"http.route": "/api/users"}).decision for _ in range(200))
    assert set(decisions) == {Decision.RECORD_AND_SAMPLE, Decision.RECORD_ONLY}


def test_local_children_follow_their_parent() -> None:
    provider = TracerProvider(sampler=OtelSentrySampler(SEEDS, "production", record_unsampled=True))
    tracer = provider.get_tracer("test")
    seen: Counter[bool] = Counter()
    for _ in range(300):
        with (
            tracer.start_as_current_span(
                "GET", kind=SpanKind.SERVER, attributes={"http.route": "/x"}
            ) as root,
            tracer.start_as_current_span("http send") as child,
        ):
            assert child.get_span_context().trace_flags == root.get_span_context().trace_flags
            assert child.is_recording() == root.is_recording()
            assert child.get_span_context().trace_state == root.get_span_context().trace_state
            seen[root.get_span_context().trace_flags.sampled] += 1
    assert set(seen) == {True, False}
    dropped = TracerProvider(sampler=OtelSentrySampler(SEEDS, "production", record_unsampled=True))
    t = dropped.get_tracer("t")
    with (
        t.start_as_current_span("GET", attributes={"http.route": "/health"}) as root,
        t.start_as_current_span("child") as child,
    ):
        assert not root.is_recording() and not child.is_recording()
        assert child.get_span_context().trace_id == root.get_span_context().trace_id


# -- parent-based ------------------------------------------------------------------------------


def remote(headers: dict[str, str]) -> Context:
    context = TraceContextTextMapPropagator().extract(headers)
    return SentryPropagator().extract(headers, context)


TRACE = "771a43a4192642f0b136d5159a501700"
SPAN = "b7ad6b7169203331"


@pytest.mark.parametrize("route", ["/health", "/api/admin/users", "/v1/chat/completions"])
@pytest.mark.parametrize("environment", ["production", "development"])
@pytest.mark.parametrize(
    ("headers", "sampled"),
    [
        ({"traceparent": f"00-{TRACE}-{SPAN}-01"}, True),
        ({"traceparent": f"00-{TRACE}-{SPAN}-00"}, False),
        ({"sentry-trace": f"{TRACE}-{SPAN}-1"}, True),
        ({"sentry-trace": f"{TRACE}-{SPAN}-0"}, False),
    ],
)
def test_an_incoming_decision_is_honoured_never_turned_into_sampled(
    route: str, environment: str, headers: dict[str, str], sampled: bool
) -> None:
    sampler = OtelSentrySampler(SEEDS, environment, record_unsampled=True)
    for _ in range(20):
        result = decide(sampler, {"http.route": route}, trace_id=int(TRACE, 16), parent=remote(headers))
        assert result.decision.is_sampled() is sampled
    assert sampler.counters.snapshot()["decisions"] == {("sampled" if sampled else "unsampled", "parent"): 20}


def test_a_deferred_sentry_decision_is_made_here_with_the_incoming_sample_rand() -> None:
    sampler = OtelSentrySampler(SEEDS, "production")
    for rand, sampled in (("0.150000", True), ("0.250000", False)):
        headers = {
            "sentry-trace": f"{TRACE}-{SPAN}",
            "baggage": f"sentry-trace_id={TRACE},sentry-sample_rand={rand}",
        }
        result = decide(
            sampler, {"http.route": "/v1/messages"}, trace_id=int(TRACE, 16), parent=remote(headers)
        )
        assert result.decision.is_sampled() is sampled, rand
        facts = facts_from_trace_state(result.trace_state)
        assert facts is not None and facts.sample_rand == float(rand) and facts.sample_rate == 0.2
    assert sampler.counters.snapshot()["decisions"] == {
        ("sampled", "/v1/messages*"): 1,
        ("unsampled", "/v1/messages*"): 1,
    }


def test_a_continued_sentry_trace_keeps_the_heads_rate_and_frozen_context() -> None:
    baggage = (
        f"sentry-trace_id={TRACE},sentry-public_key=upstream,sentry-sample_rate=0.25,"
        "sentry-sample_rand=0.123456,sentry-sampled=true,sentry-environment=prod,other=1"
    )
    headers = {"sentry-trace": f"{TRACE}-{SPAN}-1", "baggage": baggage}
    sampler = OtelSentrySampler(SEEDS, "production")
    result = decide(sampler, {"http.route": "/health"}, trace_id=int(TRACE, 16), parent=remote(headers))
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(result.attributes) == {"http.route": "/health"}  # no bookkeeping on the span
    facts = facts_from_trace_state(result.trace_state)
    assert facts is not None and facts.sample_rate == 0.25
    frozen = frozen_dscs.get(int(TRACE, 16))  # kept for the Sentry bridge only
    assert frozen is not None and "sentry-public_key=upstream" in frozen and "other=1" not in frozen


def test_a_parent_context_of_another_trace_is_not_taken_for_the_incoming_one() -> None:
    sampler = OtelSentrySampler(SEEDS, "production")
    other = SpanContext(int("ab" * 16, 16), int(SPAN, 16), is_remote=True, trace_flags=TraceFlags(1))
    context = set_span_in_context(NonRecordingSpan(other), remote({"sentry-trace": f"{TRACE}-{SPAN}-0"}))
    assert decide(
        sampler, {"http.route": "/x"}, trace_id=other.trace_id, parent=context
    ).decision.is_sampled()


# -- OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG ---------------------------------------------


def test_the_sdk_finds_the_sampler_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk._configuration import _import_sampler

    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.05,/v1/chat/*=0.5")
    sampler = _import_sampler("otel_sentry")
    assert isinstance(sampler, OtelSentrySampler)
    assert sampler.rules.sampling_rule("/v1/chat/completions") == (0.5, "/v1/chat/*")
    assert sampler.rules.sampling_rule("/anything") == (0.05, "default")
    assert sampler.rules.sampling_rule("/health") == (0.0, "/health*")  # the seeds' rules stay after it


@pytest.mark.parametrize(
    ("arg", "rules", "default"),
    [
        ("0.05", (), 0.05),
        ("/v1/chat/*=0.5, 0.2", (("/v1/chat/*", 0.5),), 0.2),
        ("*=1", (("*", 1.0),), None),
        ("/a=b=0.3", (("/a=b", 0.3),), None),
    ],
)
def test_sampler_arg_grammar(arg: str, rules: tuple[Any, ...], default: Optional[float]) -> None:
    assert parse_sampler_arg(arg) == (rules, default)


@pytest.mark.parametrize("arg", ["1.5", "abc", "/v1/*=2", "=0.5", "0.1,0.2", "/x=nan", ","])
def test_a_bad_arg_is_one_warning_and_a_safe_fallback(arg: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        sampler = sampler_factory(arg)
    assert isinstance(sampler, OtelSentrySampler)
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert "OTEL_TRACES_SAMPLER_ARG" in message and repr(arg) in message and "without it" in message
    # the configured rules (here the seeds'), never "sample everything"
    assert sampler.rules.sampling == SEEDS.sampling
    assert sampler.rules.default_sample_rate == 0.1


def test_a_factory_failure_still_gives_the_seeds_rules_not_always_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from otel_sentry import _configure

    def broken() -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(_configure, "current_settings", broken)
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        sampler = sampler_factory(None)
    assert isinstance(sampler, OtelSentrySampler) and sampler.rules == Rules()
    assert "seeds' default rules" in caplog.text


# -- counters as metrics -----------------------------------------------------------------------


def test_decisions_are_counted_by_rule_as_otel_metrics() -> None:
    counters = SamplingCounters()
    sampler = OtelSentrySampler(SEEDS, "production", counters=counters)
    for route in ["/health"] * 3 + ["/api/admin/x"] * 4 + ["/other"] * 5:
        decide(sampler, {"http.route": route})
    decide(sampler, {"http.route": "/x"}, parent=remote({"traceparent": f"00-{TRACE}-{SPAN}-01"}))
    counters.promotion("error_event")
    counters.eviction("expired", 3)
    reader = InMemoryMetricReader()
    register_metrics(counters, MeterProvider(metric_readers=[reader]))
    points: dict[tuple[str, tuple[tuple[str, Any], ...]], int] = {}
    for resource_metrics in reader.get_metrics_data().resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    points[metric.name, tuple(sorted(point.attributes.items()))] = point.value
    decisions = {k[1]: v for k, v in points.items() if k[0] == "otel_sentry.sampling.decisions"}
    by_rule: Counter[str] = Counter()
    for attributes, value in decisions.items():
        by_rule[dict(attributes)["otel_sentry.sampling.rule"]] += value
    assert by_rule == {"/health*": 3, "/api/admin*": 4, "default": 5, "parent": 1}
    assert (
        decisions[(("otel_sentry.sampling.decision", "unsampled"), ("otel_sentry.sampling.rule", "/health*"))]
        == 3
    )
    assert points["otel_sentry.sampling.promotions", (("otel_sentry.sampling.reason", "error_event"),)] == 1
    assert points["otel_sentry.sampling.evictions", (("otel_sentry.sampling.reason", "expired"),)] == 1
    assert points["otel_sentry.sampling.dropped_spans", (("otel_sentry.sampling.reason", "expired"),)] == 3


# -- errors are never sampled away (end to end) ------------------------------------------------

ERRORS = [  # (method, path, route): every kind of error the errors app has
    ("GET", "/unhandled/7", "/unhandled/{item_id}"),
    ("GET", "/sync-unhandled", "/sync-unhandled"),
    ("POST", "/v1/chat/completions", "/v1/chat/completions"),
    ("GET", "/provider-down", "/provider-down"),
    ("GET", "/http-503", "/http-503"),
    ("GET", "/nested-span", "/nested-span"),
]
ALL_ZERO = {"sampling": [], "default_sample_rate": 0, "full_sampling_environments": []}


def run_errors(tmp_path: Path, rules: dict[str, Any], repeat: int, **extra: str) -> tuple[Any, Any, str]:
    rules_file = tmp_path / f"rules-{len(list(tmp_path.iterdir()))}.json"
    rules_file.write_text(json.dumps(rules))
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "SENTRY_DSN": ingest.dsn(),
            "SENTRY_ENVIRONMENT": "e2e",
            "OTEL_SENTRY_RULES_FILE": str(rules_file),
            **extra,
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            for _ in range(repeat):
                for method, path, _route in ERRORS:
                    assert (
                        app.client.request(method, path, headers={"Connection": "close"}).status_code >= 500
                    )
            assert app.stop() == 0, app.output()
            output = app.output()
        receiver.wait_for(lambda r: False, 0.5)  # anything still in flight arrives by now
        return ingest, receiver, output


def _shape(event: dict[str, Any]) -> dict[str, Any]:
    """What an error event says, without what differs per request (ids, times, addresses)."""
    return {
        "transaction": event["transaction"],
        "tags": sorted(event["tags"].items()),
        # (what the scrubber reports depends on the values of local variables, e.g. reprs of live
        # objects, not on sampling)
        "contexts": sorted(set(event["contexts"]) - {"scrubbing"}),
        "trace": sorted(k for k in event["contexts"]["trace"]),
        "exception": [
            (v["type"], v["value"], len(v["stacktrace"]["frames"])) for v in event["exception"]["values"]
        ],
        "request": sorted(event["request"]),
        "level": event["level"],
        "release": event.get("release"),
        "environment": event.get("environment"),
    }


def test_with_every_rate_at_0_n_errors_give_n_events_0_transactions_0_otlp_spans(tmp_path: Path) -> None:
    repeat = 5
    n = repeat * len(ERRORS)
    ingest, receiver, output = run_errors(tmp_path, ALL_ZERO, repeat)
    events, transactions, spans = ingest.events(), ingest.transactions(), receiver.spans()
    print(
        f"\nFIGURE item 2: {n} error requests -> {len(events)} error events, {len(transactions)} "
        f"transactions, {len(spans)} OTLP spans (every rate 0)"
    )
    assert (len(events), len(transactions), len(spans)) == (n, 0, 0), output
    assert Counter(e["transaction"] for e in events) == Counter(r for *_, r in ERRORS * repeat)
    for envelope in ingest.envelopes():  # linked to their (unsampled) trace
        header = envelope.headers["trace"]
        assert header["sampled"] == "false" and header["sample_rate"] == "0.0"
        (event,) = envelope.payloads("event")
        assert header["trace_id"] == event["contexts"]["trace"]["trace_id"]
    for event in events:
        relay.assert_valid(event)

    # the same errors in sampled traces: the events say exactly the same things
    sampled_ingest, sampled_receiver, _ = run_errors(tmp_path, {"sampling": {"*": 1}}, 1)
    assert len(sampled_ingest.transactions()) >= len(ERRORS) and sampled_receiver.spans()
    for envelope in sampled_ingest.envelopes():  # errors and transactions of a trace: one context
        header = envelope.headers["trace"]
        assert (header["sampled"], header["sample_rate"]) == ("true", "1.0")
    sampled_shapes = {e["transaction"]: _shape(e) for e in sampled_ingest.events()}
    for event in events:
        assert _shape(event) == sampled_shapes[event["transaction"]]


# -- transactions record the rate that let them through ----------------------------------------


def test_transactions_record_their_rules_rate_for_extrapolation(sentry_ingest: SentryIngest) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_sentry._exporter import SentrySpanExporter
    from otel_sentry._runtime import Runtime
    from otel_sentry._settings import load_settings

    runtime = Runtime(load_settings({}, dsn=sentry_ingest.dsn(), environment="production", release="r@1"))
    provider = TracerProvider(sampler=OtelSentrySampler(SEEDS, "production"))
    provider.add_span_processor(SimpleSpanProcessor(SentrySpanExporter(runtime)))
    tracer = provider.get_tracer("test")
    for route in ("/v1/chat/completions", "/api/admin/users", "/v1/models/{model_id}") * 40:
        server = {"http.route": route, "http.request.method": "GET"}
        with (
            tracer.start_as_current_span(f"GET {route}", kind=SpanKind.SERVER, attributes=server),
            tracer.start_as_current_span(
                "SELECT users", kind=SpanKind.CLIENT, attributes={"db.system": "sqlite"}
            ),
        ):
            pass
    assert runtime.flush(10)
    envelopes = [e for e in sentry_ingest.envelopes() if e.payloads("transaction")]
    assert envelopes
    for envelope in envelopes:
        (transaction,) = envelope.payloads("transaction")
        rate = SEEDS.sample_rate(transaction["transaction"], "production")
        assert transaction["contexts"]["trace"]["data"]["sentry.sample_rate"] == rate
        header = envelope.headers["trace"]
        trace_id = int(header["trace_id"], 16)
        assert header == {
            "trace_id": transaction["contexts"]["trace"]["trace_id"],
            "public_key": "public",
            "release": "r@1",
            "environment": "production",
            "transaction": transaction["transaction"],
            "sample_rate": str(rate),
            "sample_rand": f"{derived_sample_rand(trace_id):.6f}",
            "sampled": "true",
        }
        assert float(header["sample_rand"]) < rate
        assert [s["op"] for s in transaction["spans"]] == ["db"]
        relay.assert_valid(transaction)
    runtime.shutdown()


def test_the_distro_makes_this_sampler_and_both_header_formats_the_default() -> None:
    from otel_sentry._configure import apply_environment_defaults

    env: dict[str, str] = {}
    apply_environment_defaults(env)
    assert "OTEL_TRACES_SAMPLER" not in env  # handed to our provider alone, not to every TracerProvider()
    assert env["OTEL_PROPAGATORS"] == "tracecontext,baggage,sentry"
    mine = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_PROPAGATORS": "tracecontext"}
    apply_environment_defaults(mine)
    assert (
        mine["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        and mine["OTEL_PROPAGATORS"] == "tracecontext"
    )
