"""The ``sentry`` logs exporter: the OpenTelemetry logs signal as Sentry logs (``enable_logs=True``).

``OTEL_LOGS_EXPORTER=sentry`` (or ``otlp,sentry``) routes what the OTel logging handler collects to
Sentry's logs product. The item format mirrors sentry-sdk 2.75's log batcher (``_log_batcher.py``):
envelope items of type ``log`` holding ``{"version": 2, "items": [...]}``, each log with timestamp,
level, body, typed attributes and the trace it was logged in. sentry-sdk only builds these from its
own scope, so the mapping from OTel log records is written here. Envelopes carry at most
``MAX_ITEMS`` logs and stay under ``MAX_ITEM_BYTES``; bodies and attribute values are capped and
scrubbed like everything else that leaves the process.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Optional

from . import _sanitize
from ._redact import REDACTED, is_sensitive_name, scrub_text
from ._runtime import Runtime, get_runtime
from ._sdk_import import ensure_sentry_sdk
from ._transport import LOG

try:  # opentelemetry-sdk >= 1.39 names
    from opentelemetry.sdk._logs.export import LogRecordExporter as _Base
    from opentelemetry.sdk._logs.export import LogRecordExportResult as _Result
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import LogExporter as _Base  # type: ignore[attr-defined,no-redef]
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef,assignment]
        LogExportResult as _Result,
    )

logger = logging.getLogger("otel_sentry")

LOG_CATEGORY = LOG
MAX_ITEMS = 100  # sentry-sdk's LogBatcher flushes at 100
MAX_ITEM_BYTES = 900 * 1024
MAX_BODY = 8192
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_VALUE = 1024
_SEVERITY = ((21, "fatal"), (17, "error"), (13, "warn"), (9, "info"), (5, "debug"), (1, "trace"))


def severity_text(number: Optional[int]) -> str:
    for threshold, text in _SEVERITY:
        if number is not None and number >= threshold:
            return text
    return "info"


def _typed(value: Any) -> Optional[dict[str, Any]]:
    """sentry-sdk's ``serialize_attribute``: a value with its type, strings capped and scrubbed."""
    if isinstance(value, bool):
        return {"value": value, "type": "boolean"}
    if isinstance(value, int):
        return {"value": value, "type": "integer"} if abs(value) < 2**63 else None
    if isinstance(value, float):
        return {"value": value, "type": "double"} if value == value and abs(value) != float("inf") else None
    homogeneous = isinstance(value, (list, tuple)) and value and len({type(v) for v in value}) == 1
    if homogeneous and type(value[0]) in (int, float, bool):
        return {"value": list(value[:100]), "type": "array"}
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    text = value if isinstance(value, str) else json.dumps(_sanitize.data(value), ensure_ascii=False)
    return {
        "value": _sanitize.cap(scrub_text(_sanitize.fix_text(text)), MAX_ATTRIBUTE_VALUE),
        "type": "string",
    }


def _attributes(*sources: Optional[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for source in sources:
        for key, value in (source or {}).items():
            if len(result) >= MAX_ATTRIBUTES:
                return result
            name = _sanitize.cap(_sanitize.fix_text(str(key)), 200)
            typed = {"value": REDACTED, "type": "string"} if is_sensitive_name(name) else _typed(value)
            if typed is not None:
                result[name] = typed
    return result


class SentryLogExporter(_Base):  # type: ignore[misc]
    """Exports OTel log records to Sentry's logs, through otel_sentry's delivery queues."""

    def __init__(self, runtime: Optional[Runtime] = None, *, direct: bool = False) -> None:
        self._runtime = runtime
        #: fed by :mod:`._sentry_logs` (Python records as sentry-sdk sends them), not by the global pipeline
        self._direct = direct
        self._warned = False
        self._closed = False

    def _sentry_log(
        self, record: Any, resource: Any, runtime: Runtime, fallback_trace: str
    ) -> dict[str, Any]:
        log = getattr(record, "log_record", record)
        number = getattr(getattr(log, "severity_number", None), "value", None)
        level = severity_text(number)
        defaults = runtime.defaults
        sentry_attributes: dict[str, Any] = {
            "sentry.severity_number": number or 9,
            "sentry.severity_text": level,
            "sentry.origin": "auto.log.otel",
            "sentry.sdk.name": defaults.sdk["name"],
            "sentry.sdk.version": defaults.sdk["version"],
            "process.runtime.name": platform.python_implementation(),
            "process.runtime.version": ".".join(map(str, sys.version_info[:3])),
        }
        for key, value in (
            ("sentry.environment", defaults.environment),
            ("sentry.release", defaults.release),
            ("server.address", defaults.server_name),
        ):
            if value:
                sentry_attributes[key] = value
        resource_attributes = getattr(resource, "attributes", None) or getattr(
            getattr(log, "resource", None), "attributes", None
        )
        body = getattr(log, "body", None)
        text = body if isinstance(body, str) else json.dumps(_sanitize.data(body), ensure_ascii=False)
        timestamp = getattr(log, "timestamp", None) or getattr(log, "observed_timestamp", None)
        item: dict[str, Any] = {
            "timestamp": (timestamp / 1e9) if timestamp else datetime.now(timezone.utc).timestamp(),
            "level": level,
            "body": _sanitize.cap(scrub_text(_sanitize.fix_text(text)), MAX_BODY),
            "attributes": _attributes(
                sentry_attributes, getattr(log, "attributes", None), resource_attributes
            ),
        }
        trace_id, span_id = getattr(log, "trace_id", None), getattr(log, "span_id", None)
        item["trace_id"] = f"{trace_id:032x}" if trace_id else fallback_trace
        if span_id:
            item["span_id"] = f"{span_id:016x}"
        return item

    def export(self, batch: Sequence[Any]) -> Any:
        runtime = self._runtime or get_runtime()
        if runtime is None or self._closed:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "otel_sentry: OTEL_LOGS_EXPORTER includes 'sentry' but the Sentry bridge is not running "
                    "(add 'sentry' to OTEL_TRACES_EXPORTER); dropping logs"
                )
            return _Result.FAILURE
        try:
            fallback_trace = uuid.uuid4().hex
            logs = [
                self._sentry_log(record, getattr(record, "resource", None), runtime, fallback_trace)
                for record in batch
                if self._direct or not _ours(record)
            ]
            for chunk in _chunks(logs):
                submit_logs(runtime, chunk)
            return _Result.SUCCESS
        except Exception:
            runtime.internal_error("exporting logs to Sentry")
            return _Result.FAILURE

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        runtime = self._runtime or get_runtime()
        return True if runtime is None else bool(runtime.flush(timeout_millis / 1000))


def _ours(record: Any) -> bool:
    """otel_sentry's own warnings are the operator's, never log items of the user's Sentry project;
    and a record :mod:`._sentry_logs` already sent (as sentry-sdk would) is not sent twice."""
    from . import _sentry_logs

    scope = getattr(record, "instrumentation_scope", None) or getattr(
        getattr(record, "log_record", None), "instrumentation_scope", None
    )
    name = getattr(scope, "name", None) or ""
    if name == "otel_sentry" or name.startswith("otel_sentry."):
        return True
    log = getattr(record, "log_record", record)
    return _sentry_logs.sent_already(name, getattr(log, "timestamp", None))


def _chunks(logs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for log in logs:
        log_size = len(json.dumps(log, ensure_ascii=False).encode("utf-8", "replace"))
        if current and (len(current) >= MAX_ITEMS or size + log_size > MAX_ITEM_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(log)
        size += log_size
    if current:
        chunks.append(current)
    return chunks


def submit_logs(runtime: Runtime, logs: list[dict[str, Any]]) -> None:
    """One envelope with one ``log`` item, queued on every destination (category ``log_item``)."""
    ensure_sentry_sdk()
    from sentry_sdk.envelope import Envelope, Item, PayloadRef

    headers: dict[str, Any] = {"sent_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if runtime.settings.dsn:
        headers["dsn"] = runtime.settings.dsn
    envelope = Envelope(headers=headers)
    envelope.add_item(
        Item(
            type="log",
            content_type="application/vnd.sentry.items.log+json",
            headers={"item_count": len(logs)},
            payload=PayloadRef(json={"version": 2, "items": logs}),
        )
    )
    body = envelope.serialize()
    runtime.counters["log_item.produced"] += len(logs)
    for transport in runtime.transports:
        transport.submit(body, LOG_CATEGORY)
