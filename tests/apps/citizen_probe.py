"""Run under ``opentelemetry-instrument``: what otel_sentry did to the host's logging and to a
TracerProvider some library builds itself. Prints one JSON line."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

root_handlers = [type(h).__module__ + "." + type(h).__name__ for h in logging.getLogger().handlers]
other = TracerProvider()  # a library's or a test's own provider
with other.get_tracer("lib").start_as_current_span("library span") as span:
    other_sampled = span.get_span_context().trace_flags.sampled
logging.getLogger("asyncio").error("Unclosed client session")  # last-resort output, as Python prints it
logging.getLogger("otel_sentry").warning("otel_sentry: a warning of ours")
logging.getLogger("app").warning("the app says %s", "hello")
print(
    json.dumps(
        {
            "root_handlers": root_handlers,
            "other_sampler": other.sampler.get_description(),
            "other_sampled": other_sampled,
            "global_sampler": trace.get_tracer_provider().sampler.get_description(),  # type: ignore[attr-defined]
        }
    )
)
