"""One scrubber in front of every exporter of every signal.

A process configured with every exporter otel_sentry can name (OTLP for traces, metrics and logs, the
console exporters, Sentry for traces and logs) emits a log record with secrets in its arguments, its
``extra=`` attributes and a JWT, a metric whose attributes hold a token, and a span: the walk over the
configured providers finds every exporter behind the scrubber, and no secret reaches the OTLP receiver
or the Sentry ingest. An exporter added without the scrubber is found by the same walk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from otel_sentry.testing import OtlpReceiver, SentryIngest

KEY = "sk-proj-Zq8WmX2vLr5TnB7yKc4HdJ9p"
PASSWORD = "Hunter2-Wq9zXv!"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2J6OTg3NiJ9.Qm9iU2VjcmV0U2lnbmF0dXJlMTIz"
METRIC_TOKEN = "tok_9Fz2QwXr7LmN4pKs"

SCRIPT = textwrap.dedent(
    f"""
    import json, logging
    import otel_sentry
    otel_sentry.configure()
    from opentelemetry import metrics, trace
    from otel_sentry._scrubbing_signals import exporters
    log = logging.getLogger("app")
    log.error("key %s password %s", {KEY!r}, {PASSWORD!r}, extra={{"auth_header": "Bearer " + {JWT!r},
              "note": "jwt " + {JWT!r}, "db_password": {PASSWORD!r}}})
    counter = metrics.get_meter("app").create_counter("requests")
    counter.add(1, {{"http.url": "https://x.example/cb?access_token={METRIC_TOKEN}", "api_key": {KEY!r}}})
    with trace.get_tracer("app").start_as_current_span("login password=" + {PASSWORD!r}) as span:
        span.add_event("sent " + {KEY!r}, {{"detail": "token=" + {METRIC_TOKEN!r}}})
    print("EXPORTERS=" + json.dumps(exporters()))
    trace.get_tracer_provider().force_flush()
    metrics.get_meter_provider().force_flush()
    from opentelemetry._logs import get_logger_provider
    get_logger_provider().force_flush()
    """
)


def test_every_exporter_of_every_signal_is_behind_the_scrubber_and_nothing_leaks() -> None:
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = {
            "PATH": "/usr/bin:/bin",
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_TRACES_EXPORTER": "otlp,sentry,console",
            "OTEL_METRICS_EXPORTER": "otlp,console",
            "OTEL_LOGS_EXPORTER": "otlp,sentry,console",
            "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
            "OTEL_TRACES_SAMPLER": "always_on",
            "OTEL_SERVICE_NAME": "scrub-test",
        }
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("EXPORTERS="))
        found = [tuple(item) for item in json.loads(line.split("=", 1)[1])]
        assert receiver.wait_for(lambda r: r.logs_count > 0 and r.metrics_count > 0 and r.spans(), 10)
        assert ingest.wait_for(lambda i: len(i.raw_bytes()) > 0, 10)
        blobs = {"otlp": receiver.raw_bytes(), "sentry": ingest.raw_bytes(), "console": done.stdout.encode()}

    signals = {(signal, name) for signal, name, _ in found}
    assert {
        ("traces", "OTLPSpanExporter"),
        ("traces", "SentrySpanExporter"),
        ("traces", "ConsoleSpanExporter"),
    } <= signals
    assert {
        ("logs", "OTLPLogExporter"),
        ("logs", "SentryLogExporter"),
        ("metrics", "OTLPMetricExporter"),
    } <= signals
    assert [entry for entry in found if not entry[2]] == [], found
    for where, blob in blobs.items():
        for secret in (KEY, PASSWORD, JWT, METRIC_TOKEN):
            assert secret.encode() not in blob, (where, secret)
    assert b"[REDACTED]" in blobs["otlp"] and b"[REDACTED]" in blobs["sentry"]


def test_an_exporter_added_without_the_scrubber_is_found() -> None:
    script = textwrap.dedent(
        """
        import json
        import otel_sentry
        otel_sentry.configure()
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
        from otel_sentry._scrubbing_signals import exporters, scrub_pipeline
        trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        before = [e for e in exporters() if not e[2]]
        scrub_pipeline()
        print(json.dumps([before, [e for e in exporters() if not e[2]]]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", "OTEL_TRACES_EXPORTER": "sentry"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert before == [["traces", "ConsoleSpanExporter", False]]
    assert after == []
