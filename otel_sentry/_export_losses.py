"""Losses to any OTel backend are counted, as Sentry drops are: by reason, one warning per outage.

The SDK's batch processor drops a batch its exporter fails to send and the OTLP exporter logs every
failed attempt (an error line per batch, a warning per retry: hundreds of lines for one collector
restart) without counting anything. :class:`LossCountingSpanExporter` sits in front of every span
exporter otel_sentry builds (and :func:`wrap_log_exporters` in front of the log exporters) and:

* counts spans and log records lost, by signal, exporter and reason: ``refused`` (no connection),
  ``timeout``, ``http_4xx``, ``http_429``, ``http_5xx``, ``too_large``, ``shutdown`` (the shutdown
  budget ran out), ``failed`` (anything else);
* says so once per outage: one warning when exports start failing, one line when they recover with
  what was lost meanwhile; the exporter's own per-attempt lines are held back while we report;
* exposes the totals as the observable counter ``otel_sentry.export.lost`` ({item}, attributes
  ``otel_sentry.export.signal``, ``otel_sentry.export.exporter``, ``otel_sentry.export.reason``) and
  in :func:`snapshot`;
* keeps to the process's one shutdown budget (:mod:`._shutdown`): once shutdown began, an OTLP export
  waits at most what is left of it, and nothing is sent after it ran out (counted ``shutdown``).

The reason comes from the OTLP HTTP client's own result (status code, error), read through a thin
per-instance wrapper of its ``export``; exporters without one report ``failed``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Optional

logger = logging.getLogger("otel_sentry")

SIGNAL = "otel_sentry.export.signal"
EXPORTER = "otel_sentry.export.exporter"
REASON = "otel_sentry.export.reason"

_lock = threading.Lock()
_lost: Counter[tuple[str, str, str]] = Counter()
_local = threading.local()
_metrics_registered = False


def snapshot() -> dict[tuple[str, str, str], int]:
    """(signal, exporter, reason) -> items lost since the process started."""
    with _lock:
        return dict(_lost)


def _count(signal: str, exporter: str, reason: str, items: int) -> None:
    with _lock:
        _lost[signal, exporter, reason] += items


def reason_of(result: Any) -> str:
    """The loss reason of an OTLP HTTP client result (status code, error), ``failed`` when unknown."""
    status = getattr(result, "status_code", None)
    if isinstance(status, int):
        if status == 413:
            return "too_large"
        if status == 429:
            return "http_429"
        return "http_4xx" if 400 <= status < 500 else "http_5xx" if status >= 500 else "failed"
    error = getattr(result, "error", None)
    text = f"{type(error).__name__} {error}".lower() if error is not None else ""
    if "timeout" in text or "timed out" in text:
        return "timeout"
    if "refused" in text or "connection" in text or "resolve" in text:
        return "refused"
    return "failed"


class _HoldExporterLines(logging.Filter):
    """Drops the exporter's own per-attempt lines while we report the outage (our export thread only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_local, "exporting", False) or record.levelno >= logging.CRITICAL


_filter = _HoldExporterLines()


def _hold_lines_of(inner: Any) -> None:
    names = {type(inner).__module__}
    client_logger = getattr(getattr(inner, "_client", None), "_logger", None)
    if isinstance(client_logger, logging.Logger):
        names.add(client_logger.name)
    for name in names:
        target = logging.getLogger(name)
        if _filter not in target.filters:
            target.addFilter(_filter)


class _LossCounting:
    """What span and log exporters share: the outage state, the reason, the shutdown budget."""

    signal = "spans"

    def __init__(self, inner: Any, name: Optional[str] = None) -> None:
        self._inner = inner
        self._name = name or type(inner).__name__
        self._outage: Optional[Counter[str]] = None
        self._state_lock = threading.Lock()
        client = getattr(inner, "_client", None)
        self._client = client if callable(getattr(client, "export", None)) else None
        self._timeout = getattr(self._client, "_timeout", None)
        if self._client is not None:
            original = self._client.export

            def export(data: bytes) -> Any:
                result = original(data)
                _local.result = result
                return result

            self._client.export = export
        _hold_lines_of(inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _export(self, batch: Sequence[Any], success: Any) -> Any:
        budget = self._shutdown_budget()
        if budget is not None and budget <= 0:
            self._lost(len(batch), "shutdown")
            return None
        if budget is not None and self._client is not None and isinstance(self._timeout, (int, float)):
            self._client._timeout = min(self._timeout, budget)
        _local.result = None
        _local.exporting = True
        try:
            result = self._inner.export(batch)
        except Exception:
            result = None
            logger.debug("otel_sentry: %s raised while exporting", self._name, exc_info=True)
        finally:
            _local.exporting = False
        if result == success:
            self._recovered()
        else:
            self._lost(len(batch), reason_of(getattr(_local, "result", None)))
        return result

    @staticmethod
    def _shutdown_budget() -> Optional[float]:
        from . import _shutdown

        if _shutdown._deadline is None:
            return None
        from ._configure import current_settings

        return _shutdown.remaining(current_settings().shutdown_timeout)

    def _lost(self, items: int, reason: str) -> None:
        _count(self.signal, self._name, reason, items)
        with self._state_lock:
            first = self._outage is None
            if first:
                self._outage = Counter()
            assert self._outage is not None
            self._outage[reason] += items
        if first:
            logger.warning(
                "otel_sentry: %s export through %s is failing (%s); %s are dropped and counted until it "
                "recovers (metric otel_sentry.export.lost)",
                self.signal,
                self._name,
                reason,
                self.signal,
            )

    def _recovered(self) -> None:
        with self._state_lock:
            outage, self._outage = self._outage, None
        if outage:
            lost = ", ".join(f"{n} {reason}" for reason, n in sorted(outage.items()))
            logger.warning(
                "otel_sentry: %s export through %s recovered; lost meanwhile: %s",
                self.signal,
                self._name,
                lost,
            )

    def shutdown(self) -> Any:
        return self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> Any:
        flush = getattr(self._inner, "force_flush", None)
        return flush(timeout_millis) if callable(flush) else True


class LossCountingSpanExporter(_LossCounting):
    """A span exporter that counts what its inner exporter fails to deliver."""

    signal = "spans"

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        result = self._export(spans, SpanExportResult.SUCCESS)
        return SpanExportResult.FAILURE if result is None else result


class LossCountingLogExporter(_LossCounting):
    """A log record exporter that counts what its inner exporter fails to deliver."""

    signal = "logs"

    def export(self, batch: Sequence[Any]) -> Any:
        try:
            from opentelemetry.sdk._logs.export import LogRecordExportResult as Result
        except ImportError:  # pragma: no cover - older SDKs
            from opentelemetry.sdk._logs.export import LogExportResult as Result  # type: ignore[attr-defined,no-redef,assignment]
        result = self._export(batch, Result.SUCCESS)
        return Result.FAILURE if result is None else result


def _counted(exporter: Any) -> bool:
    """Only exporters that talk to a backend: ours count their own losses (Sentry's client reports)."""
    module = type(exporter).__module__
    return not module.startswith("otel_sentry.") and not isinstance(exporter, _LossCounting)


def wrap_span_exporter(exporter: Any) -> Any:
    """The configurator's one call site: every span exporter it builds goes through here."""
    register_metrics()
    return LossCountingSpanExporter(exporter) if _counted(exporter) else exporter


def wrap_log_exporters(logger_provider: Any) -> int:
    """Put loss counting in front of the exporters of the batch log processors the SDK built (it has
    no hook for them, unlike ``export_span_processor`` for spans); returns how many were wrapped."""
    processors = getattr(
        getattr(logger_provider, "_multi_log_record_processor", None), "_log_record_processors", ()
    )
    wrapped = 0
    for processor in processors or ():
        holder = getattr(processor, "_batch_processor", processor)
        exporter = getattr(holder, "_exporter", None)
        if exporter is not None and _counted(exporter):
            holder._exporter = LossCountingLogExporter(exporter)
            wrapped += 1
    if wrapped:
        register_metrics()
    return wrapped


def register_metrics() -> None:
    """``otel_sentry.export.lost`` as an observable counter on the global meter provider (once)."""
    global _metrics_registered
    with _lock:
        if _metrics_registered:
            return
        _metrics_registered = True
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation

    def lost(_options: CallbackOptions) -> Iterable[Observation]:
        for (signal, exporter, reason), value in snapshot().items():
            yield Observation(value, {SIGNAL: signal, EXPORTER: exporter, REASON: reason})

    metrics.get_meter("otel_sentry").create_observable_counter(
        "otel_sentry.export.lost",
        callbacks=[lost],
        unit="{item}",
        description="Spans and log records an OpenTelemetry exporter failed to deliver, by reason",
    )
