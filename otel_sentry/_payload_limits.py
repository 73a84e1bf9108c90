"""Bounded payloads: no attribute, event attribute or batch leaves through an OTel exporter unbounded.

One huge value (a provider echoing a 20 MB body into its exception message, the repr of a big
object) used to make a single OTLP request of tens of MB, which a stock collector refuses as a
whole (gRPC's default 4 MiB message limit): the 511 other spans of the batch went with it, and
nothing said why. Two bounds now apply:

* **Values, when they are set.** ``apply_defaults`` gives the OpenTelemetry SDK a default
  ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` (``DEFAULT_VALUE_LENGTH`` characters) when the user set none
  of the standard limits. The SDK then cuts span, event, link and log-record attribute values as
  they are recorded, so a 20 MB exception costs a span 32 KiB of memory in the export queue, in
  scrubbing and in serialization, not 40 MB. Limits the user sets (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``,
  ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``, ``OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT``, the
  count limits) are the SDK's own and are left alone.
* **Marks and batches, when they are exported.** ``BoundedSpanExporter`` sits in front of every
  span exporter: a value cut at its limit ends with ``TRUNCATION_MARK`` and the span lists the
  cut keys in ``otel_sentry.truncated`` (the SDK cuts silently); a batch is split into requests
  whose encoded size stays under ``MAX_REQUEST_BYTES`` (below gRPC's default 4 MiB, and OTLP/HTTP
  receivers' 20 MiB); a single span larger than that on its own is dropped and counted, never the
  batch.

Why 32 KiB (32,768 characters): a Python traceback line is about 100-150 characters, so a
stack trace keeps 200+ frames, the whole of any realistic request's traceback including chained
causes; the SDK cuts the head, so what goes is the tail of an oversized message, while the frames
stay. Sentry caps a message at 8,192 characters; OTLP backends get four times that.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Optional

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ._span_copy import copy_span

logger = logging.getLogger("otel_sentry")

DEFAULT_VALUE_LENGTH = 32 * 1024
#: The encoded size of one export request: under gRPC's default 4 MiB receive limit with room for
#: the request's framing, and far under OTLP/HTTP receivers' default 20 MiB body limit.
MAX_REQUEST_BYTES = 3 * 1024 * 1024
TRUNCATION_MARK = "…[truncated]"
TRUNCATED_ATTRIBUTE = "otel_sentry.truncated"

GENERIC = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
SPAN = "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT"
LOG = "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT"

# Upper bounds of protobuf's framing, per field kind (tag + length varints), for the size estimate.
_PER_SPAN = 128  # ids, times, kind, status, flags, name/attribute/event framing
_PER_ATTRIBUTE = 16
_PER_EVENT = 24
_PER_REQUEST = 64


class PayloadCounters:
    """What the bounds did, by kind: ``value.truncated``, ``span.dropped.oversized``, ``request.split``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, kind: str, n: int = 1) -> int:
        with self._lock:
            self._counts[kind] += n
            return self._counts[kind]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


counters = PayloadCounters()


def _limit(environ: Mapping[str, str], *names: str) -> Optional[int]:
    for name in names:
        raw = (environ.get(name) or "").strip()
        if raw.isdigit():
            return int(raw)
    return None


def apply_defaults(environ: Optional[MutableMapping[str, str]] = None) -> None:
    """The SDK's attribute value length limit, when the user set none (read by the providers)."""
    env = os.environ if environ is None else environ
    if not any((env.get(name) or "").strip() for name in (GENERIC, SPAN, LOG)):
        env[GENERIC] = str(DEFAULT_VALUE_LENGTH)


def span_limits(environ: Optional[Mapping[str, str]] = None) -> tuple[Optional[int], Optional[int]]:
    """(span attribute limit, event/link attribute limit) as the SDK applies them."""
    env = os.environ if environ is None else environ
    return _limit(env, SPAN, GENERIC), _limit(env, GENERIC)


def mark(value: Any, limit: Optional[int]) -> tuple[Any, bool]:
    """``value`` with the truncation mark when it reached ``limit`` (the SDK cut it there)."""
    if limit is None or limit <= len(TRUNCATION_MARK):
        return value, False
    if isinstance(value, str):
        if len(value) >= limit and not value.endswith(TRUNCATION_MARK):
            return value[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK, True
        return value, False
    if isinstance(value, (list, tuple)) and any(isinstance(v, str) and len(v) >= limit for v in value):
        return tuple(mark(v, limit)[0] for v in value), True
    return value, False


def _mark_attributes(
    attributes: Optional[Mapping[str, Any]], limit: Optional[int], prefix: str, cut: list[str]
) -> Optional[dict[str, Any]]:
    if not attributes or limit is None:
        return None
    changed: Optional[dict[str, Any]] = None
    for key, value in attributes.items():
        marked, was_cut = mark(value, limit)
        if was_cut:
            changed = changed if changed is not None else dict(attributes)
            changed[key] = marked
            cut.append(prefix + key)
    return changed


def mark_span(span: ReadableSpan, span_limit: Optional[int], event_limit: Optional[int]) -> ReadableSpan:
    """The span with every value the SDK cut marked as such (the span itself when none was)."""
    cut: list[str] = []
    attributes = _mark_attributes(span.attributes, span_limit, "", cut)
    events: Optional[list[Event]] = None
    for index, event in enumerate(span.events):
        marked = _mark_attributes(event.attributes, event_limit, f"{event.name}:", cut)
        if marked is not None:
            events = events if events is not None else list(span.events)
            events[index] = Event(event.name, marked, event.timestamp)
    if not cut:
        return span
    counters.add("value.truncated", len(cut))
    merged = dict(attributes if attributes is not None else span.attributes or {})
    merged[TRUNCATED_ATTRIBUTE] = tuple(sorted(cut))
    return copy_span(span, attributes=merged, events=events if events is not None else span.events)


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_value_size(v) + _PER_ATTRIBUTE for v in value)
    return 16  # bool, int, float


def _attributes_size(attributes: Optional[Mapping[str, Any]]) -> int:
    if not attributes:
        return 0
    return sum(len(key) + _value_size(value) + _PER_ATTRIBUTE for key, value in attributes.items())


def span_size(span: ReadableSpan) -> int:
    """An upper bound of the span's protobuf encoding, without its resource and scope."""
    size = _PER_SPAN + _value_size(span.name) + _attributes_size(span.attributes)
    size += sum(_PER_EVENT + _value_size(e.name) + _attributes_size(e.attributes) for e in span.events)
    size += sum(_PER_EVENT + _attributes_size(link.attributes) for link in span.links)
    if span.status.description:
        size += _value_size(span.status.description)
    return size


def _envelope_size(span: ReadableSpan) -> int:
    """Resource and scope framing, paid once per (resource, scope) group in a request."""
    resource = _attributes_size(span.resource.attributes) if span.resource is not None else 0
    scope = span.instrumentation_scope
    return _PER_REQUEST + resource + (len(scope.name) + len(scope.version or "") + 32 if scope else 0)


def split(
    spans: Sequence[ReadableSpan], max_bytes: int = MAX_REQUEST_BYTES
) -> tuple[list[list[ReadableSpan]], list[tuple[ReadableSpan, int]]]:
    """Requests of at most ``max_bytes`` (estimated from above) and the spans too big for any."""
    requests: list[list[ReadableSpan]] = []
    oversized: list[tuple[ReadableSpan, int]] = []
    current: list[ReadableSpan] = []
    used = 0
    groups: set[tuple[int, int]] = set()
    for span in spans:
        group = (id(span.resource), id(span.instrumentation_scope))
        size = span_size(span)
        envelope = _envelope_size(span)
        if size + envelope > max_bytes:
            oversized.append((span, size + envelope))
            continue
        extra = size + (envelope if group not in groups else 0)
        if current and used + extra > max_bytes:
            requests.append(current)
            current, used, groups = [], 0, set()
            extra = size + envelope
        current.append(span)
        used += extra
        groups.add(group)
    if current:
        requests.append(current)
    return requests, oversized


def request_limit_for(exporter: SpanExporter) -> Optional[int]:
    """The request size bound for an exporter: none for the ``sentry`` exporter, which builds its
    own envelopes within Sentry's limits (docs/payload-limits.md), ``MAX_REQUEST_BYTES`` otherwise."""
    from ._exporter import SentrySpanExporter

    return None if isinstance(exporter, SentrySpanExporter) else MAX_REQUEST_BYTES


class BoundedSpanExporter(SpanExporter):
    """Marks cut values and keeps every request to the wrapped exporter under ``max_bytes``
    (``None``: marks only)."""

    def __init__(self, exporter: SpanExporter, *, max_bytes: Optional[int] = MAX_REQUEST_BYTES) -> None:
        self.exporter = exporter
        self.max_bytes = max_bytes
        self._span_limit, self._event_limit = span_limits()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        marked = [mark_span(s, self._span_limit, self._event_limit) for s in spans]
        if self.max_bytes is None:
            return self.exporter.export(marked)
        requests, oversized = split(marked, self.max_bytes)
        for span, size in oversized:
            total = counters.add("span.dropped.oversized")
            logger.warning(
                "otel_sentry: dropped span %r of trace %032x before %s: about %d bytes encoded, over "
                "the %d-byte limit of one export request (lower OTEL_ATTRIBUTE_COUNT_LIMIT or the "
                "value length limits); %d dropped so far",
                span.name,
                span.context.trace_id,
                self._exporter_name(),
                size,
                self.max_bytes,
                total,
            )
        if len(requests) > 1:
            counters.add("request.split", len(requests) - 1)
        result = SpanExportResult.SUCCESS
        for request in requests:
            if self.exporter.export(request) is not SpanExportResult.SUCCESS:
                result = SpanExportResult.FAILURE
        return result

    def _exporter_name(self) -> str:
        inner: Any = self.exporter
        while isinstance(getattr(inner, "exporter", None), SpanExporter):  # through the scrubber
            inner = inner.exporter
        return type(inner).__name__

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)


class LogBodyLimit:
    """A log record processor that bounds the body (the SDK bounds attributes only) and marks
    what was cut, in place, before any export processor queues the record."""

    def __init__(self, limit: Optional[int] = None) -> None:
        env_limit = _limit(os.environ, LOG, GENERIC)
        self.limit = (
            limit if limit is not None else (env_limit if env_limit is not None else DEFAULT_VALUE_LENGTH)
        )

    def on_emit(self, log_record: Any) -> None:
        record = getattr(log_record, "log_record", log_record)
        cut: list[str] = []
        body = getattr(record, "body", None)
        if isinstance(body, bytes) and len(body) > self.limit:
            body = body.decode("utf-8", "replace")
        if isinstance(body, str):
            if len(body) > self.limit:
                body = body[: self.limit]  # the mark below replaces its tail
            marked, was_cut = mark(body, self.limit)
            if was_cut:
                record.body = marked
                cut.append("body")
        attributes = getattr(record, "attributes", None)
        if attributes is not None:
            for key, value in list(attributes.items()):
                marked, was_cut = mark(value, self.limit)
                if was_cut:
                    attributes[key] = marked
                    cut.append(key)
            if cut:
                attributes[TRUNCATED_ATTRIBUTE] = tuple(sorted(cut))
        if cut:
            counters.add("value.truncated", len(cut))

    def emit(self, log_record: Any) -> None:  # the processor method's name before SDK 1.39
        self.on_emit(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def bound_log_bodies(provider: Any) -> bool:
    """Put ``LogBodyLimit`` first among the SDK logger provider's processors, so that the export
    processors (added by the SDK's configuration) queue bounded records. The SDK has no public way
    to add a processor in front; without its processor list (another provider, another SDK
    version) the processor is appended, which still bounds the record before its export runs on
    the batch thread. False when the provider is not the SDK's."""
    add = getattr(provider, "add_log_record_processor", None)
    if add is None:
        return False
    processor = LogBodyLimit()
    multi: Any = getattr(provider, "_multi_log_record_processor", None)
    lock = getattr(multi, "_lock", None)
    if (
        multi is not None
        and lock is not None
        and isinstance(getattr(multi, "_log_record_processors", None), tuple)
    ):
        with lock:
            multi._log_record_processors = (processor, *multi._log_record_processors)
        return True
    add(processor)
    return True
