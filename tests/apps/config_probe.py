"""Run under ``opentelemetry-instrument python config_probe.py``: prints, as JSON, what the pipeline
configured from the environment (sampler, decisions for a few routes, propagators, Sentry settings)."""

from __future__ import annotations

import json

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind

from otel_sentry._runtime import get_runtime

provider = trace.get_tracer_provider()
sampler = getattr(provider, "sampler", None)
decisions = {}
for route in ("/health", "/v1/chat/completions", "/api/admin/users", "/other"):
    sampled = 0
    for n in range(1, 401):
        result = sampler.should_sample(
            None, n * 0x9E3779B97F4A7C15 % (1 << 128), "GET", SpanKind.SERVER, {"http.route": route}
        )
        sampled += result.decision.is_sampled()
    decisions[route] = sampled / 400
runtime = get_runtime()
print(
    json.dumps(
        {
            "sampler": sampler.get_description() if sampler else None,
            "sampled_share": decisions,
            "propagators": sorted(
                type(p).__name__ for p in getattr(propagate.get_global_textmap(), "_propagators", [])
            ),
            "dsn_set": bool(runtime and runtime.settings.dsn),
            "destinations": [t.destination.name for t in runtime.transports] if runtime else [],
            "spool": [t.spool is not None for t in runtime.transports] if runtime else [],
            # whether instruments take measurements (no reader: they should not)
            "meters_enabled": getattr(
                metrics.get_meter("probe").create_counter("c"), "_is_enabled", lambda: True
            )(),
        }
    )
)
