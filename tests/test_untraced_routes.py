"""Routes the sampling rules never trace (the seeds' /health and /metrics) skip the instrumentation
middleware, yet their errors are events and what they call starts no trace of its own."""

from __future__ import annotations

from pathlib import Path

from otel_sentry._rules import Rules
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import AppProcess

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}


def test_only_the_leading_rate_0_rules_qualify() -> None:
    assert Rules().untraced_path_patterns("production") == ("/health*", "/metrics*")
    assert Rules().untraced_path_patterns("development") == ()
    assert Rules().with_sampling([("*", 1.0)]).untraced_path_patterns() == ()  # an override traces them
    rules = Rules(sampling=(("/items/{item_id}", 0.0), ("/ping", 0.0), ("/v1/*", 0.2), ("/late", 0.0)))
    assert rules.untraced_path_patterns() == ("/ping",)


def test_an_untraced_route_exports_nothing_and_still_reports_its_errors() -> None:
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_TRACES_SAMPLER_ARG": "1",  # every other route is traced: an orphan span would show
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/ok/1") as app:
            assert app.get("/health/deep", headers=CLOSE).status_code == 200
            assert app.get("/health/deep?fail=true", headers=CLOSE).status_code == 500
            assert app.get("/ok/2", headers=CLOSE).status_code == 200
            assert app.stop() == 0, app.output()
        assert receiver.wait_for(lambda r: any(s["name"] == "GET /ok/{item_id}" for s in r.spans()), 10)
        assert ingest.wait_for(lambda i: len(i.events()) >= 1, 10)
    names = [s["name"] for s in receiver.spans()]
    assert "db.ping" not in names and not [n for n in names if "/health" in n], names
    (event,) = ingest.events()
    assert event["exception"]["values"][-1]["value"] == "database unreachable"
    assert event["tags"]["endpoint"] == "/health/deep"
    assert len(event["contexts"]["trace"]["trace_id"]) == 32  # its own unsampled trace
    assert ingest.transactions() and all(t["transaction"] != "/health/deep" for t in ingest.transactions())


def test_an_untraced_route_still_continues_an_incoming_sampled_trace() -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health/deep") as app:
            for flag in ("01", "00"):
                headers = {**CLOSE, "traceparent": f"00-{trace_id[:-2]}{flag}-{parent}-{flag}"}
                assert app.get("/health/deep", headers=headers).status_code == 200
            assert app.stop() == 0, app.output()
        assert receiver.wait_for(lambda r: any(s["name"] == "db.ping" for s in r.spans()), 10)
    spans = receiver.spans()
    assert {s["trace_id"] for s in spans} == {trace_id[:-2] + "01"}  # the unsampled one exported nothing
    (server,) = [s for s in spans if s["kind"] == 2]
    assert server["parent_span_id"] == parent and server["name"].startswith("GET /health")
