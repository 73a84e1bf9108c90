"""Building the pipeline: one code path for ``opentelemetry-instrument`` and for ``configure()``.

The SDK's own ``_initialize_components`` builds providers, samplers and exporters from the standard
variables; otel_sentry adds its environment defaults, validates exporter names first (an unknown name
would otherwise make the SDK raise and leave the app untraced), builds the Sentry bridge and installs
the capture hooks.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import MutableMapping
from typing import Any, Callable, Optional

from opentelemetry.util._importlib_metadata import entry_points

from . import _env_checks
from ._redact import mask_url_secrets
from ._runtime import Runtime, get_runtime, set_runtime
from ._settings import ConfigurationError, Settings, load_settings, strict_requested

logger = logging.getLogger("otel_sentry")

_SIGNALS = {
    "traces": ("OTEL_TRACES_EXPORTER", "opentelemetry_traces_exporter"),
    "metrics": ("OTEL_METRICS_EXPORTER", "opentelemetry_metrics_exporter"),
    "logs": ("OTEL_LOGS_EXPORTER", "opentelemetry_logs_exporter"),
}
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
_configured = False
_configure_lock = threading.Lock()
_settings: Optional[Settings] = None


def _otlp_endpoint_set(environ: MutableMapping[str, str], signal: str) -> bool:
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    )


def apply_environment_defaults(environ: Optional[MutableMapping[str, str]] = None) -> None:
    """Defaults that work on a fresh machine: Sentry (local inbox without a DSN), OTLP only when an
    endpoint is configured, HTTP/protobuf for OTLP, and nothing that retries against a missing
    collector."""
    env = os.environ if environ is None else environ
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    # Selected request and response headers go on the server span from otel_sentry's own sanitized
    # request facts (_enrich.DEFAULT_*_HEADERS), for sampled and failed requests only: the standard
    # OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* variables, when a user sets them, hand the job to the
    # instrumentation (every recorded span, a regex per header: a tenth of a request's cost). Its
    # sanitizing then uses the seeds' sensitive names.
    env.setdefault(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS",
        ".*authorization.*,.*cookie.*,.*token.*,.*api-key.*,.*apikey.*,.*secret.*,.*password.*,.*session.*",
    )
    env.setdefault("OTEL_TRACES_EXPORTER", "otlp,sentry" if _otlp_endpoint_set(env, "traces") else "sentry")
    # Sentry's headers next to W3C's (docs/sampling.md). The sampler is not set here: the default one
    # is handed to our provider alone (_default_sampler), so a TracerProvider() another library builds
    # keeps the SDK's default instead of warning about a name only entry points know.
    env.setdefault("OTEL_PROPAGATORS", "tracecontext,baggage,sentry")
    for signal in ("metrics", "logs"):
        env.setdefault(_SIGNALS[signal][0], "otlp" if _otlp_endpoint_set(env, signal) else "none")
    if env.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").strip().lower() in ("1", "true", "yes", "on"):
        # FastAPI would add a second OTLP exporter to our provider (every span exported twice), and it
        # refuses OTEL_TRACES_EXPORTER values other than otlp/none (otlp,sentry fails at startup).
        env["FASTAPI_OTEL_AUTO_CONFIGURE"] = "false"
        logger.warning(
            "otel_sentry: FASTAPI_OTEL_AUTO_CONFIGURE=true ignored: otel_sentry already exports what "
            "OTEL_TRACES_EXPORTER=%s names; FastAPI's own exporter would export every span twice",
            env.get("OTEL_TRACES_EXPORTER"),
        )
    from ._debug_route import exclude_from_tracing

    exclude_from_tracing(env)  # a test event must not count as a failed request anywhere


def _available_exporters(group: str) -> set[str]:
    return {ep.name for ep in entry_points(group=group)}


def validate_exporter_names(
    environ: Optional[MutableMapping[str, str]] = None, report: Optional[Callable[[str], None]] = None
) -> dict[str, list[str]]:
    """Drop unknown exporter names with one clear line each, so the SDK never raises at startup."""
    env = os.environ if environ is None else environ
    report = report or _env_checks.warn
    protocol = (env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    result: dict[str, list[str]] = {}
    for signal, (var, group) in _SIGNALS.items():
        raw = env.get(var, "")
        names = [n.strip() for n in raw.split(",") if n.strip() and n.strip() != "none"]
        available = _available_exporters(group)
        valid: list[str] = []
        for name in names:
            resolved = _OTLP_BY_PROTOCOL.get(protocol) if name == "otlp" else name
            if name in valid:
                report(f"invalid {var}={raw!r}: {name!r} is listed twice; using it once")
                continue
            if resolved in available:
                valid.append(name)
                continue
            hint = (
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} needs an exporter that is not installed "
                f"(pip install opentelemetry-exporter-otlp-proto-grpc for grpc)"
                if name == "otlp"
                else f"installed: {', '.join(sorted(available)) or 'none'}"
            )
            report(f"invalid {var} entry {name!r}: unknown exporter ({hint}); ignoring it")
        if names != valid:
            env[var] = ",".join(valid) or "none"
        result[signal] = valid
    return result


def ensure_runtime(**overrides: Any) -> Runtime:
    """The process's Sentry bridge, built from the environment on first use."""
    from . import _sentry_sdk_interop
    from ._starlette import instrument_starlette

    runtime = get_runtime()
    if runtime is None:
        runtime = Runtime(load_settings(**overrides))
        set_runtime(runtime)
        destinations = ", ".join(mask_url_secrets(_describe(t.destination)) for t in runtime.transports)
        logger.info("otel_sentry: sending errors to %s", destinations)
    if runtime.settings.adopt_sentry_sdk:
        _sentry_sdk_interop.install()
    instrument_starlette()
    from . import _background, _logging

    _background.install()  # background tasks, asyncio, threads, executors (+ the debug route)
    _logging.install(runtime.settings.log_event_level, runtime.settings.log_breadcrumb_level)
    return runtime


def _sentry_log_items(runtime: Runtime) -> None:
    """Sentry log items from every logger's records, as sentry-sdk's logging integration sends them."""
    from . import _logging, _sentry_logs

    _sentry_logs.enable(runtime)
    _logging.wrap_call_handlers()


def _describe(destination: Any) -> str:
    url = getattr(destination, "url", None)
    inbox = getattr(getattr(destination, "_inbox", None), "directory", None)
    return f"{destination.name} ({url or inbox})"


def _scrubbed_batch_processor(exporter: Any) -> Any:
    """Every exporter (OTLP, console, sentry, ...) sees spans only after scrubbing."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from ._export_losses import wrap_span_exporter
    from ._payload_limits import BoundedSpanExporter, request_limit_for
    from ._scrubbing_exporter import ScrubbingSpanExporter
    from ._sentry_otlp import with_sentry_notes

    counted = ScrubbingSpanExporter(wrap_span_exporter(with_sentry_notes(exporter)))
    return BatchSpanProcessor(BoundedSpanExporter(counted, max_bytes=request_limit_for(exporter)))


def _redacted_log_processor(exporter: Any) -> Any:
    """Every log exporter sees records only after their request's secrets are replaced."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    from ._request_secrets import RedactingLogExporter

    return BatchLogRecordProcessor(RedactingLogExporter(exporter))


def configure_pipeline(
    *, auto_instrumentation_version: Optional[str] = None, **overrides: Any
) -> Optional[Runtime]:
    """Set defaults, build the Sentry bridge, and let the SDK build providers and exporters."""
    global _configured
    with _configure_lock:
        if _configured:
            logger.warning("otel_sentry: already configured; ignoring a second configure()")
            return get_runtime()
        _configured = True
        from ._diagnostics import install as keep_our_warnings_visible

        keep_our_warnings_visible()
        # Strict mode collects every problem and raises once; otherwise each is one warning line and
        # the variable is rewritten to its safe value before the SDK reads it.
        problems: list[str] = []
        report = problems.append if strict_requested() else _env_checks.warn
        _check_standard_variables(report)  # before the defaults: a blank value is an unset one
        apply_environment_defaults()
        from ._payload_limits import apply_defaults as bound_payloads

        bound_payloads()  # before the SDK builds its providers, which read the limits
        if os.environ.get("OTEL_CONFIG_FILE"):
            report(
                "OTEL_CONFIG_FILE is set but otel_sentry builds the pipeline from environment "
                "variables; the file is ignored"
            )
        _env_checks.check_environment(os.environ, report)
        exporters = validate_exporter_names(report=report)
        if problems:
            raise ConfigurationError("otel_sentry: strict mode: " + "; ".join(problems))
        runtime: Optional[Runtime] = None
        global _settings
        if "sentry" in exporters["traces"]:
            runtime = ensure_runtime(**overrides)
            _settings = runtime.settings
            from ._shutdown import install_sigterm_handler

            install_sigterm_handler()  # deliver or count what is queued when SIGTERM ends the process
        else:
            _settings = load_settings(**overrides)  # still validate and report bad values once
            logger.info("otel_sentry: 'sentry' is not in OTEL_TRACES_EXPORTER; no Sentry events are sent")

        from ._promotion import PromotionProcessor
        from ._propagator import install_global_propagators
        from ._sampling_metrics import process_counters

        install_global_propagators()
        promotion = (
            PromotionProcessor(
                max_traces=_settings.promotion_max_traces,
                max_spans_per_trace=_settings.promotion_max_spans,
                max_seconds=_settings.promotion_max_seconds,
                counters=process_counters(),
            )
            if _settings.promotion
            else None
        )

        from opentelemetry.sdk._configuration import _initialize_components

        from ._exporter import SentrySpanExporter
        from ._failed_spans import FailedSpanRecorder
        from ._failsafe import GuardedSpanProcessor, guard_provider_sampler
        from ._request_secrets import RequestSecretsProcessor

        # promoted spans go to every export processor, so promotion keeps track of them
        export_processor = (
            promotion.track(_scrubbed_batch_processor) if promotion else _scrubbed_batch_processor
        )
        _initialize_components(
            auto_instrumentation_version=auto_instrumentation_version,
            exporter_args_map={SentrySpanExporter: {"runtime": runtime}} if runtime else None,
            # ours run inside the request's start_span/end: guarded, so a bug never fails it
            span_processors=[
                GuardedSpanProcessor(p)
                for p in [
                    FailedSpanRecorder(),
                    RequestSecretsProcessor(),  # background spans keep their request's secrets known
                    *([promotion] if promotion else []),
                    *_profiler(runtime),
                ]
            ],
            export_span_processor=export_processor,  # type: ignore[arg-type]
            export_log_record_processor=_redacted_log_processor,
            sampler=_default_sampler(),
            **_without_unread_metrics(_initialize_components),
        )
        _enable_promotion(promotion, runtime)
        from opentelemetry import trace
        from opentelemetry._logs import get_logger_provider

        from ._export_losses import wrap_log_exporters
        from ._payload_limits import bound_log_bodies

        logs = get_logger_provider()
        bound_log_bodies(logs)  # log bodies: the SDK bounds attributes only
        _scrub_every_signal(_env_checks.warn)
        wrap_log_exporters(logs)  # log records lost to a backend are counted too
        if runtime is not None and "sentry" in exporters["logs"]:
            # after the SDK's providers: flushed at exit before they close the bridge
            _sentry_log_items(runtime)

        guard_provider_sampler(trace.get_tracer_provider())
        return runtime


def _profiler(runtime: Optional[Runtime]) -> list[Any]:
    """The transaction profiler, when profiles are asked for and transactions go to Sentry."""
    from ._profiles import install_profiler

    return install_profiler(runtime)


def _default_sampler() -> Any:
    """The otel_sentry sampler (the seeds' per-route rates, parent-based) for the provider we build,
    unless ``OTEL_TRACES_SAMPLER`` names one (then the SDK builds that, as stock does)."""
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    from ._sampler import sampler_factory

    return sampler_factory(os.environ.get("OTEL_TRACES_SAMPLER_ARG"))


def _check_standard_variables(report: Callable[[str], None]) -> None:
    from ._env_standard import check_standard_variables, writable_inbox
    from ._settings import SETTINGS, _default_inbox_dir

    check_standard_variables(os.environ, report, tuple(v for s in SETTINGS for v in s.env))
    writable_inbox(os.environ, report, _default_inbox_dir())


def _scrub_every_signal(report: Callable[[str], None]) -> None:
    """The scrubber in front of every log and metric exporter the SDK built (spans already have it)."""
    from ._scrubbing_signals import scrub_pipeline

    for missed in scrub_pipeline():
        report(f"cannot put the scrubber in front of {missed}; that exporter may receive secrets")


def metrics_unread() -> bool:
    """True when no metrics exporter is named and no meter configurator of the user's may add one."""
    names = [n.strip() for n in os.environ.get("OTEL_METRICS_EXPORTER", "").split(",") if n.strip()]
    return not any(n != "none" for n in names) and not os.environ.get("OTEL_PYTHON_METER_CONFIGURATOR")


def _without_unread_metrics(initialize: Callable[..., Any]) -> dict[str, Any]:
    """With no metrics exporter (``OTEL_METRICS_EXPORTER=none``, the default without an OTLP
    endpoint) the SDK still installs a MeterProvider, and every instrumented request builds and
    hands over measurements that no reader will ever collect (a twentieth of a request's cost). Its
    meters are then configured disabled, which instruments check first. A meter configurator the
    user named wins."""
    if not metrics_unread():
        return {}
    try:
        from opentelemetry.sdk.metrics._internal import _disable_meter_configurator
    except ImportError:  # an SDK without meter configurators: measurements are taken, unread
        return {}
    if "meter_configurator" not in inspect.signature(initialize).parameters:
        return {}
    return {"meter_configurator": _disable_meter_configurator}


def _enable_promotion(promotion: Any, runtime: Optional[Runtime]) -> None:
    """Let our sampler record unsampled traces only when the promotion processor is there to use
    them (with another sampler, nothing is recorded-only and promotion has nothing to do)."""
    from opentelemetry import trace

    from ._sampler import OtelSentrySampler

    sampler = getattr(trace.get_tracer_provider(), "sampler", None)
    if promotion is None or not isinstance(sampler, OtelSentrySampler):
        return
    sampler.record_unsampled = True
    if runtime is not None:
        runtime.promoter = promotion


def current_settings() -> Settings:
    """The settings the pipeline was configured with (read from the environment if it was not)."""
    return _settings if _settings is not None else load_settings()
