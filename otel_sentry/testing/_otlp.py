"""OTLP's side of the wire: the loopback OTLP/HTTP receiver and its trace decoding.

Separate from the Sentry ingest because decoding needs ``opentelemetry-proto``, imported lazily so
the Sentry half works without it.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional

from ._server import Headers, LoopbackServer, Response, UnsupportedEncoding, decompress, json_response

__all__ = ["OtlpReceiver", "ReceivedOtlpRequest"]


@dataclass
class ReceivedOtlpRequest:
    """One request to :class:`OtlpReceiver` (any signal), before decoding."""

    path: str
    content_type: str
    content_encoding: Optional[str]
    raw: bytes
    http_headers: Headers = field(default_factory=dict)
    status: int = 200


_OTLP_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(obj: Any) -> Any:
    """OTLP/JSON carries ids as hex; protobuf's JSON mapping wants base64 for ``bytes`` fields."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in _OTLP_ID_KEYS and isinstance(value, str):
                out[key] = base64.b64encode(bytes.fromhex(value)).decode() if value else ""
            else:
                out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(obj, list):
        return [_hex_ids_to_base64(v) for v in obj]
    return obj


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(key_values: Any) -> Dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in key_values}


def _decode_traces(raw: bytes, content_type: str) -> List[Dict[str, Any]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    if "json" in content_type:
        from google.protobuf import json_format

        json_format.ParseDict(_hex_ids_to_base64(json.loads(raw)), request, ignore_unknown_fields=True)
    else:
        request.ParseFromString(raw)
    spans: List[Dict[str, Any]] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                        "kind": int(span.kind),
                        "attributes": _attributes(span.attributes),
                        "events": [
                            {
                                "name": ev.name,
                                "attributes": _attributes(ev.attributes),
                                "time_ns": ev.time_unix_nano,
                            }
                            for ev in span.events
                        ],
                        "links": [
                            {
                                "trace_id": link.trace_id.hex(),
                                "span_id": link.span_id.hex(),
                                "attributes": _attributes(link.attributes),
                            }
                            for link in span.links
                        ],
                        "status": {"code": int(span.status.code), "message": span.status.message},
                        "resource": resource,
                        "scope": scope_spans.scope.name,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                    }
                )
    return spans


class OtlpReceiver(LoopbackServer):
    """Loopback OTLP/HTTP receiver: point an exporter at ``endpoint`` (+ ``/v1/traces``).

    Trace exports (protobuf or JSON) are decoded into plain dicts, see :meth:`spans`; metrics and
    logs are only counted and kept raw.
    """

    _thread_name = "otlp-receiver"
    _SIGNALS: ClassVar[Dict[str, str]] = {
        "/v1/traces": "traces",
        "/v1/metrics": "metrics",
        "/v1/logs": "logs",
    }

    def __init__(self) -> None:
        super().__init__()
        self._requests: List[ReceivedOtlpRequest] = []
        self._spans: List[Dict[str, Any]] = []

    @property
    def endpoint(self) -> str:
        """Base endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` style); signal paths are appended to it."""
        return self.url

    def spans(self) -> List[Dict[str, Any]]:
        """Decoded spans of accepted (2xx) trace exports, in arrival order."""
        with self._cond:
            return list(self._spans)

    def requests(self, signal: Optional[str] = None) -> List[ReceivedOtlpRequest]:
        """Requests received, optionally only for ``"traces"``, ``"metrics"`` or ``"logs"``."""
        with self._cond:
            return [r for r in self._requests if signal is None or self._SIGNALS.get(r.path) == signal]

    @property
    def metrics_count(self) -> int:
        return len(self.requests("metrics"))

    @property
    def logs_count(self) -> int:
        return len(self.requests("logs"))

    def raw_bytes(self) -> bytes:
        """All decompressed request bodies (every signal) concatenated, for leak searches."""
        with self._cond:
            return b"".join(r.raw for r in self._requests)

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()
            self._spans.clear()

    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> Response:
        url_path = urllib.parse.urlsplit(path).path.rstrip("/")
        signal = self._SIGNALS.get(url_path)
        if signal is None:
            return json_response(404, {"detail": "not found"})
        if method != "POST":
            return json_response(405, {"detail": "method not allowed"})
        content_type = headers.get("content-type", "application/x-protobuf").split(";")[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type != "application/x-protobuf":
            return json_response(415, {"detail": f"unsupported content type {content_type}"})
        encoding = headers.get("content-encoding")
        try:
            raw = decompress(body, encoding)
        except UnsupportedEncoding as exc:
            return json_response(415, {"detail": f"unsupported content encoding {exc}"})
        except (OSError, EOFError, zlib.error) as exc:
            return json_response(400, {"detail": f"bad {encoding} body: {exc}"})

        record = ReceivedOtlpRequest(url_path, content_type, encoding, raw, headers)
        spans: List[Dict[str, Any]] = []
        response: Response
        if signal == "traces":
            try:
                spans = _decode_traces(raw, content_type)
            except Exception as exc:  # DecodeError / ParseError / ValueError: all mean 400
                record.status = 400
                response = json_response(400, {"detail": f"cannot decode traces: {exc}"})
        if record.status == 200:
            # The empty Export*ServiceResponse serializes to b"" in protobuf and {} in JSON.
            if is_json:
                response = (200, {"Content-Type": "application/json"}, b"{}")
            else:
                response = (200, {"Content-Type": "application/x-protobuf"}, b"")
        programmed = self._next_programmed()
        if programmed is not None:
            record.status = programmed.status
            response = (programmed.status, programmed.headers, programmed.body)
        with self._cond:
            self._requests.append(record)
            if record.status == 200:
                self._spans.extend(spans)
            self._cond.notify_all()
        return response
