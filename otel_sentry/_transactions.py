"""Map finished OpenTelemetry SDK spans to a Sentry transaction event.

This module is pure: it reads :class:`~opentelemetry.sdk.trace.ReadableSpan` objects and returns
plain, JSON-safe dicts. It never sends anything and never touches global state. What a span *means*
(op, description, status from either semconv generation) is read by :mod:`._span_semantics`; this
module assembles the event around it (nesting, span limit, sampling context, JSON safety).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Link, SpanKind, StatusCode, format_span_id, format_trace_id

from ._event_common import EventDefaults  # re-exported: callers may import it from here
from ._span_semantics import (  # span_op ... re-exported: callers may import them from here
    attributes,
    first_str,
    http_method,
    http_status_code,
    http_status_to_span_status,
    query_string,
    request_path,
    request_url,
    span_description,
    span_op,
    span_status,
)

__all__ = [
    "MAX_SPANS",
    "ORIGIN",
    "EventDefaults",
    "http_status_to_span_status",
    "json_safe",
    "span_description",
    "span_op",
    "span_status",
    "transaction_event",
]

#: Most child spans one transaction carries (Sentry's limit; sentry-sdk's ``max_spans``).
MAX_SPANS = 1000

#: ``origin`` of everything this module produces.
ORIGIN = "auto.otel"


# --------------------------------------------------------------------------------------------
# JSON safety and times


_MIN_I64 = -(2**63)
_MAX_U64 = 2**64 - 1


def json_safe(value: Any) -> Any:
    """Return ``value`` made JSON-safe for Sentry.

    Tuples/sets -> lists, bytes -> str (UTF-8, undecodable bytes backslash-escaped), NaN/inf and
    integers outside the 64-bit range -> str (Relay silently turns both into ``0``), mappings
    recursively with str keys, anything else -> ``str()``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if _MIN_I64 <= value <= _MAX_U64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (Sequence, set, frozenset)):
        return [json_safe(v) for v in value]
    return str(value)


def _json_attrs(attrs: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    return {str(k): json_safe(v) for k, v in (attrs or {}).items()}


def _ts(ns: Optional[int]) -> float:
    return (ns or 0) / 1e9


def _span_times(span: ReadableSpan) -> tuple[float, float]:
    """(start, end) in float seconds; end is clamped to >= start (Relay rejects end < start)."""
    start = _ts(span.start_time)
    end = _ts(span.end_time) if span.end_time is not None else start
    return start, max(start, end)


# --------------------------------------------------------------------------------------------
# event


def _links(links: Sequence[Link]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for link in links:
        ctx = link.context
        if not ctx.is_valid:
            continue
        item: dict[str, Any] = {
            "trace_id": format_trace_id(ctx.trace_id),
            "span_id": format_span_id(ctx.span_id),
            "sampled": ctx.trace_flags.sampled,
        }
        if link.attributes:
            item["attributes"] = _json_attrs(link.attributes)
        out.append(item)
    return out


def _span_data(span: ReadableSpan) -> dict[str, Any]:
    data = _json_attrs(span.attributes)
    if span.status.status_code == StatusCode.ERROR and span.status.description:
        data.setdefault("sentry.status.message", span.status.description)
    scope = span.instrumentation_scope
    if scope is not None and scope.name:
        data.setdefault("otel.scope.name", scope.name)
    return data


def _ids(span: ReadableSpan) -> tuple[int, int]:
    """(trace_id, span_id) of ``span``; (0, 0) when it has no valid context."""
    ctx = span.get_span_context()
    if ctx is None or not ctx.is_valid:
        return 0, 0
    return ctx.trace_id, ctx.span_id


def _child_json(span: ReadableSpan) -> dict[str, Any]:
    trace_id, span_id = _ids(span)
    start, end = _span_times(span)
    out: dict[str, Any] = {
        "trace_id": format_trace_id(trace_id),
        "span_id": format_span_id(span_id),
    }
    if span.parent is not None and span.parent.span_id:
        out["parent_span_id"] = format_span_id(span.parent.span_id)
    out.update(
        {
            "op": span_op(span),
            "description": span_description(span),
            "status": span_status(span),
            "start_timestamp": start,
            "timestamp": end,
            "origin": ORIGIN,
            "kind": span.kind.name.lower(),
            "data": _span_data(span),
        }
    )
    links = _links(span.links)
    if links:
        out["links"] = links
    return out


def _transaction_name(root: ReadableSpan, explicit: Optional[str]) -> tuple[str, str]:
    """(name, source) following sentry-sdk's conventions for Python web frameworks."""
    if explicit:
        return explicit, "custom"
    attrs = attributes(root)
    route = first_str(attrs, "http.route")
    if route:
        return route, "route"
    if root.kind == SpanKind.SERVER and http_method(attrs):
        path = request_path(attrs)
        if path:
            return path, "url"
    if root.kind == SpanKind.CONSUMER or span_op(root) == "queue.process":
        return root.name or "<unlabeled transaction>", "task"
    return root.name or "<unlabeled transaction>", "custom"


def _valid_sample_rate(sample_rate: Optional[float]) -> Optional[float]:
    if sample_rate is None or isinstance(sample_rate, bool):
        return None
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and 0.0 < rate <= 1.0 else None


def transaction_event(
    root: ReadableSpan,
    children: Sequence[ReadableSpan],
    defaults: EventDefaults,
    *,
    sample_rate: Optional[float] = None,
    transaction_name: Optional[str] = None,
) -> dict[str, Any]:
    """Build a Sentry transaction event from a local root span and its descendants.

    * ``children``: the finished spans of the same trace to nest under ``root`` (any order). The
      root itself (same span id) and spans of another trace are skipped. At most
      :data:`MAX_SPANS` (1000, Sentry's limit) are kept, the earliest-starting ones; the caller
      can count the rest as dropped (``len(children) - MAX_SPANS``) for client reports - the
      count is not put in the event because Relay flags unknown top-level keys such as
      sentry-sdk's internal ``_dropped_spans`` as errors. Children whose parent is not in the
      set keep their ``parent_span_id`` (Sentry tolerates orphans).
    * ``transaction``: ``transaction_name`` (source ``custom``), else ``http.route`` (source
      ``route``, e.g. ``/v1/items/{item_id}`` as sentry-sdk's FastAPI integration names it), else
      the server path (source ``url``; Relay then replaces ids and marks it ``sanitized``), else
      the span name (``task`` for consumers, ``custom`` otherwise).
    * ``sample_rate`` (the head sampling probability that let this trace through) is recorded
      twice: as ``contexts.trace.data["sentry.sample_rate"]`` (the attribute Relay reads from OTLP
      spans) and in ``contexts.trace.dynamic_sampling_context["sample_rate"]`` (a string), which is
      where sentry-sdk 2.x puts it: its client pops ``contexts.trace.dynamic_sampling_context``
      and sends it as the envelope header ``trace``, the header Sentry extrapolates from. Whoever
      builds the envelope should do the same (adding ``public_key``); left in place, Relay keeps
      it as an unknown trace-context field. The DSC is only added when a valid rate is given;
      invalid rates (not in ``(0, 1]``) are ignored.
    * Raises ``ValueError`` if ``root`` has no valid span context; children without one are
      skipped.
    * ``contexts.trace.data`` and ``contexts.otel.attributes`` both carry the root's attributes
      (JSON-safe); ``contexts.otel.resource`` the resource attributes. Attribute values are not
      scrubbed here (e.g. ``http.url`` may contain a query string).
    """
    root_trace_id, root_span_id = _ids(root)
    if not root_trace_id:
        raise ValueError("root span has no valid span context")
    trace_id = format_trace_id(root_trace_id)
    root_id = format_span_id(root_span_id)
    root_attrs = attributes(root)
    start, end = _span_times(root)
    name, source = _transaction_name(root, transaction_name)
    op = span_op(root)
    rate = _valid_sample_rate(sample_rate)

    trace_data = _span_data(root)
    if rate is not None:
        trace_data["sentry.sample_rate"] = rate

    dsc: Optional[dict[str, Any]] = None
    if rate is not None:
        dsc = {"trace_id": trace_id, "sample_rate": str(rate), "sampled": "true"}
        if defaults.environment:
            dsc["environment"] = defaults.environment
        if defaults.release:
            dsc["release"] = defaults.release
        if source != "url":  # sentry-sdk's LOW_QUALITY_TRANSACTION_SOURCES
            dsc["transaction"] = name

    trace_context: dict[str, Any] = {"trace_id": trace_id, "span_id": root_id}
    if root.parent is not None and root.parent.span_id:
        trace_context["parent_span_id"] = format_span_id(root.parent.span_id)
    trace_context.update(
        {
            "op": op,
            "status": span_status(root),
            "origin": ORIGIN,
            "data": trace_data,
        }
    )
    if dsc is not None:
        trace_context["dynamic_sampling_context"] = dsc
    links = _links(root.links)
    if links:
        trace_context["links"] = links

    contexts: dict[str, Any] = {
        "trace": trace_context,
        "otel": {
            "attributes": _json_attrs(root.attributes),
            "resource": _json_attrs(root.resource.attributes if root.resource else None),
        },
    }

    selected = []
    for child in children:
        child_trace_id, child_span_id = _ids(child)
        if child_trace_id == root_trace_id and child_span_id != root_span_id:
            selected.append(child)
    selected.sort(key=lambda s: s.start_time or 0)
    spans = [_child_json(s) for s in selected[:MAX_SPANS]]

    event: dict[str, Any] = {
        "type": "transaction",
        "event_id": uuid.uuid4().hex,
        "platform": "python",
        "transaction": name,
        "transaction_info": {"source": source},
        "start_timestamp": start,
        "timestamp": end,
        "contexts": contexts,
        "spans": spans,
    }

    tags: dict[str, str] = {}
    method = http_method(root_attrs)
    if root.kind == SpanKind.SERVER and method:
        request: dict[str, Any] = {"method": method}
        url = request_url(root_attrs, server=True)
        if url:
            request["url"] = url
        query = query_string(root_attrs)
        if query:
            request["query_string"] = query
        event["request"] = request
        code = http_status_code(root_attrs)
        if code is not None:
            tags["http.status_code"] = str(code)
            contexts["response"] = {"status_code": code}
    if tags:
        event["tags"] = tags

    if defaults.release:
        event["release"] = defaults.release
    if defaults.environment:
        event["environment"] = defaults.environment
    if defaults.server_name:
        event["server_name"] = defaults.server_name
    if defaults.sdk:
        event["sdk"] = json_safe(defaults.sdk)
    return event
