"""The OpenTelemetry instrumentations' own test suites, run stock and with otel_sentry (issue 13)."""
