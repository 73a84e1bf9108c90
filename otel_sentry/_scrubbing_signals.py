"""The scrubber in front of the log and metric exporters, and the walk that proves every exporter of
every signal has it.

Spans pass ``ScrubbingSpanExporter`` (the SDK's ``export_span_processor`` hook). Logs pass
``ScrubbingLogExporter``: bodies (text or structured), every attribute including the ones a
``logger.error(..., extra={...})`` adds, exception messages and stack traces, event names. Metrics
pass ``ScrubbingMetricExporter``: data-point attribute names and values (a route template is fine,
a raw URL with a token in its query is not). The SDK has no hook for metric exporters, so after it
builds the providers :func:`scrub_pipeline` walks them and puts the scrubber in front of every
exporter it finds that does not have one yet (a pull reader such as Prometheus gets it in front of
the metrics it receives). :func:`exporters` is the same walk, read-only: each exporter of each signal
and whether a scrubber stands before it; the tests assert none is missing.

Everything here runs in the exporters' threads, never on the request path, and passes data through
unchanged (no copy) when nothing in it needs scrubbing.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional

from ._redact import Scrubber, scrubber
from ._scrubbing_exporter import AUDIT_ATTRIBUTE, ScrubbingSpanExporter, scrub_attributes

try:  # opentelemetry-sdk >= 1.39 names
    from opentelemetry.sdk._logs.export import LogRecordExporter as _LogExporter
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import LogExporter as _LogExporter  # type: ignore[attr-defined,no-redef]
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricReader
from opentelemetry.sdk.trace.export import SpanExporter

_SCRUBBED_READER = "_otel_sentry_scrubbed"


# -- logs --------------------------------------------------------------------------------------------
def scrub_log_record(record: Any, rules: Scrubber) -> Any:
    """The record (a ReadableLogRecord or an older LogData) scrubbed, copied only when needed."""
    log = getattr(record, "log_record", record)
    found: set[str] = set()
    body = getattr(log, "body", None)
    if isinstance(body, str):
        clean_body: Any = rules.scrub_text(body)
    elif isinstance(body, (dict, list, tuple)):
        clean_body = rules.scrub(body, found)
    else:
        clean_body = body
    if clean_body is not body and clean_body != body:
        found.add("body")
    attributes = scrub_attributes(getattr(log, "attributes", None), rules, found)
    attributes = _parameters_scrubbed_in_context(attributes, log, rules, found)
    event_name = getattr(log, "event_name", None)
    clean_name = rules.scrub_text(event_name) if isinstance(event_name, str) else event_name
    if clean_name is not event_name:
        found.add("event_name")
    if not found:
        return record
    new_log = copy.copy(log)  # the record object is shared with the other signals' processors
    merged = dict(attributes if attributes is not None else getattr(log, "attributes", None) or {})
    merged[AUDIT_ATTRIBUTE] = tuple(sorted(found))
    new_log.body = clean_body
    new_log.attributes = merged
    if event_name is not None:
        new_log.event_name = clean_name
    if log is record:
        return new_log
    clone = copy.copy(record)
    object.__setattr__(clone, "log_record", new_log)  # a frozen dataclass in recent SDKs
    return clone


_PARAMETER = "sentry.message.parameter."
_TEMPLATE = "sentry.message.template"


def _parameters_scrubbed_in_context(attributes: Any, log: Any, rules: Scrubber, found: set[str]) -> Any:
    """Sentry log items carry a message's parameters one by one (as sentry-sdk's do). A parameter
    is judged in its sentence: ``"password %s"`` tells the scrubber what the value is, the value
    alone cannot. The template is formatted with the raw parameters and scrubbed; a parameter whose
    text that removed is replaced too."""
    current = attributes if attributes is not None else getattr(log, "attributes", None)
    template = current.get(_TEMPLATE) if current else None
    if current is None or not isinstance(template, str):
        return attributes
    original = getattr(log, "attributes", None) or {}
    parameters = {k: v for k, v in original.items() if k.startswith(_PARAMETER) and isinstance(v, str)}
    if not parameters:
        return attributes
    try:
        numbered = [original.get(f"{_PARAMETER}{i}") for i in range(len(parameters))]
        text = template % tuple(numbered) if all(p is not None for p in numbered) else None
    except Exception:  # a template with named fields, or one that does not format: judge the values
        text = None
    sentence = text if text is not None else " ".join(f"{k} {v}" for k, v in parameters.items())
    clean = rules.scrub_text(sentence)
    replaced: Optional[dict[str, Any]] = None
    for key, value in parameters.items():
        if len(value) >= 4 and value in sentence and value not in clean and current.get(key) == value:
            replaced = replaced if replaced is not None else dict(current)
            replaced[key] = "[REDACTED]"
            found.add(key)
    return replaced if replaced is not None else attributes


class ScrubbingLogExporter(_LogExporter):  # type: ignore[misc]
    """Delegates to the wrapped log exporter with every record scrubbed."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter

    def export(self, batch: Sequence[Any]) -> Any:
        rules = scrubber()
        return self.exporter.export([scrub_log_record(record, rules) for record in batch])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)


# -- metrics -----------------------------------------------------------------------------------------
def _replaced(items: Sequence[Any], scrub_one: Callable[[Any], Any]) -> Optional[list[Any]]:
    """items with scrub_one applied, or None when none changed (the caller keeps the original)."""
    result: Optional[list[Any]] = None
    for index, item in enumerate(items):
        clean = scrub_one(item)
        if clean is not item:
            result = result or list(items)
            result[index] = clean
    return result


def scrub_metrics_data(data: Any, rules: Scrubber) -> Any:
    """MetricsData with every data point's attributes scrubbed (frozen dataclasses: rebuilt only along
    the path to a point that changed)."""
    found: set[str] = set()

    def point(p: Any) -> Any:
        clean = scrub_attributes(getattr(p, "attributes", None), rules, found)
        return p if clean is None else dataclasses.replace(p, attributes=clean)

    def metric(m: Any) -> Any:
        points = _replaced(getattr(m.data, "data_points", ()), point)
        if points is None:
            return m
        return dataclasses.replace(m, data=dataclasses.replace(m.data, data_points=points))

    def scope(s: Any) -> Any:
        metrics = _replaced(s.metrics, metric)
        return s if metrics is None else dataclasses.replace(s, metrics=metrics)

    def resource(r: Any) -> Any:
        scopes = _replaced(r.scope_metrics, scope)
        return r if scopes is None else dataclasses.replace(r, scope_metrics=scopes)

    resources = _replaced(getattr(data, "resource_metrics", ()), resource)
    return data if resources is None else dataclasses.replace(data, resource_metrics=resources)


class ScrubbingMetricExporter(MetricExporter):
    """Delegates to the wrapped metric exporter with every data point's attributes scrubbed."""

    def __init__(self, exporter: MetricExporter) -> None:
        self.exporter = exporter
        # the reader asks its exporter for these at construction; keep the wrapped exporter's
        self._preferred_temporality = getattr(exporter, "_preferred_temporality", {})
        self._preferred_aggregation = getattr(exporter, "_preferred_aggregation", {})

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        clean = scrub_metrics_data(metrics_data, scrubber())
        return self.exporter.export(clean, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis=timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)


def _scrub_pull_reader(reader: MetricReader) -> None:
    """A reader that exports itself (Prometheus): scrub what it receives, once."""
    if getattr(reader, _SCRUBBED_READER, False):
        return
    receive = reader._receive_metrics

    def scrubbed_receive(metrics_data: Any, *args: Any, **kwargs: Any) -> None:
        receive(scrub_metrics_data(metrics_data, scrubber()), *args, **kwargs)

    reader._receive_metrics = scrubbed_receive  # type: ignore[method-assign]
    setattr(reader, _SCRUBBED_READER, True)


# -- the walk -----------------------------------------------------------------------------------------
_SCRUBBERS = (ScrubbingSpanExporter, ScrubbingLogExporter, ScrubbingMetricExporter)
_LEAF_TYPES = (SpanExporter, _LogExporter, MetricExporter)
# Attributes through which processors, readers and wrappers (ours, the SDK's, a peer's) hold the next
# step towards an exporter.
_CHILD_ATTRIBUTES = (
    "processor",
    "_processor",
    "_batch_processor",
    "span_exporter",
    "_exporter",
    "exporter",
    "_delegate",
    "delegate",
    "wrapped",
    "_wrapped",
    "inner",
    "_inner",
    "wrapped_exporter",
    "_wrapped_exporter",
)
_MULTI_ATTRIBUTES = ("_span_processors", "_log_record_processors", "processors")


def _children(node: Any) -> list[Any]:
    if isinstance(node, _SCRUBBERS):
        return [node.exporter]
    found: list[Any] = []
    attributes = vars(node) if hasattr(node, "__dict__") else {}
    for name in _MULTI_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, (list, tuple)):
            found.extend(value)
    for name in _CHILD_ATTRIBUTES:
        value = attributes.get(name)
        if value is not None and value is not node:
            found.append(value)
    return found


def _walk(node: Any, scrubbed: bool, depth: int = 0) -> Iterator[tuple[Any, Any, bool]]:
    """(holder, exporter, scrubbed) for every exporter reachable from node."""
    if depth > 12:
        return
    for child in _children(node):
        through = scrubbed or isinstance(child, _SCRUBBERS)
        if isinstance(child, _LEAF_TYPES) and not isinstance(child, _SCRUBBERS):
            if any(isinstance(inner, _LEAF_TYPES) for inner in _children(child)):
                yield from _walk(child, through, depth + 1)  # a wrapper exporter (loss counting...)
            else:
                yield node, child, through
        else:
            yield from _walk(child, through, depth + 1)


def _metric_readers(provider: Any) -> Optional[Sequence[Any]]:
    readers = getattr(provider, "_metric_readers", None)  # opentelemetry-sdk >= 1.4x
    if readers is None:
        readers = getattr(getattr(provider, "_sdk_config", None), "metric_readers", None)
    return readers


def _providers() -> dict[str, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry._logs import get_logger_provider

    from ._sentry_logs import private_provider

    return {
        "traces": getattr(trace.get_tracer_provider(), "_active_span_processor", None),
        "logs": getattr(get_logger_provider(), "_multi_log_record_processor", None),
        # Sentry log items built from records the way sentry-sdk builds them (_sentry_logs)
        "sentry logs": getattr(private_provider(), "_multi_log_record_processor", None),
        "metrics": _metric_readers(metrics.get_meter_provider()),
    }


def exporters() -> list[tuple[str, str, bool]]:
    """(signal, exporter type, scrubbed) for every exporter of every signal the providers hold."""
    result: list[tuple[str, str, bool]] = []
    for signal, root in _providers().items():
        if root is None:
            continue
        if signal == "metrics":
            for reader in root:
                walked = list(_walk(reader, False))
                if not walked:  # a pull reader is its own exporter
                    result.append(
                        (signal, type(reader).__name__, bool(getattr(reader, _SCRUBBED_READER, False)))
                    )
                for _holder, exporter, scrubbed in walked:
                    result.append((signal, type(exporter).__name__, scrubbed))
            continue
        for _holder, exporter, scrubbed in _walk(root, False):
            result.append((signal, type(exporter).__name__, scrubbed))
    return result


def _wrap_in_place(holder: Any, exporter: Any) -> bool:
    wrapper: Any
    if isinstance(exporter, SpanExporter):
        wrapper = ScrubbingSpanExporter(exporter)
    elif isinstance(exporter, MetricExporter):
        wrapper = ScrubbingMetricExporter(exporter)
    else:
        wrapper = ScrubbingLogExporter(exporter)
    for name in _CHILD_ATTRIBUTES:
        if getattr(holder, "__dict__", {}).get(name) is exporter:
            setattr(
                holder, name, wrapper
            )  # one reference assignment: the export thread sees one or the other
            return True
    return False


def scrub_pipeline() -> list[str]:
    """Put the scrubber in front of every exporter of every signal that lacks one; returns what could
    not be wrapped (reported by the caller: an exporter the walk cannot reach into)."""
    missed: list[str] = []
    for signal, root in _providers().items():
        if root is None:
            continue
        roots = list(root) if signal == "metrics" else [root]
        for node in roots:
            walked = list(_walk(node, False))
            if signal == "metrics" and not walked and isinstance(node, MetricReader):
                _scrub_pull_reader(node)
            for holder, exporter, scrubbed in walked:
                if not scrubbed and not _wrap_in_place(holder, exporter):
                    missed.append(f"{signal}: {type(exporter).__name__}")
    return missed
