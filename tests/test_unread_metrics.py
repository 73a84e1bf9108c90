"""With no metrics exporter the SDK still installs a MeterProvider; otel_sentry configures its meters
disabled so that no request builds measurements nobody reads, and leaves them on when an exporter
will read them."""

from __future__ import annotations

from tests.support.apps import probe


def test_without_a_metrics_exporter_no_request_pays_for_measurements() -> None:
    configured, _ = probe({})
    assert configured["meters_enabled"] is False
    configured, _ = probe(
        {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    )
    assert configured["meters_enabled"] is True
