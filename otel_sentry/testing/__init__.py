"""Loopback receivers for testing what otel_sentry (or any SDK) really puts on the wire.

``SentryIngest`` plays a Sentry ingest endpoint (DSN ``/api/<project>/envelope/``) and a Spotlight
sidecar (``/stream``); ``OtlpReceiver`` plays an OTLP/HTTP collector. Both bind 127.0.0.1 on a free
port, run in a daemon thread, decode what they receive into plain Python values and let a test wait
for a condition without sleeping. Asserting on decoded wire data, rather than on mocks, is the only
way to catch a payload the real backend would reject or a secret that leaks into a request body.

Only the standard library is needed at import time; OTLP decoding imports ``opentelemetry-proto``
lazily so the Sentry half works without it.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import socketserver
import threading
import urllib.parse
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable, ClassVar, Dict, List, Optional, Set, Tuple, Type, TypeVar, Union

__all__ = [
    "OtlpReceiver",
    "ReceivedEnvelope",
    "ReceivedOtlpRequest",
    "SentryIngest",
    "parse_envelope",
]

_S = TypeVar("_S", bound="_LoopbackServer")

Headers = Dict[str, str]
# (status, headers, body) as returned by a request handler.
_Response = Tuple[int, Headers, bytes]

# Item types whose payload is JSON in the Sentry envelope protocol; everything else stays bytes.
_JSON_ITEM_TYPES = frozenset(
    {
        "event",
        "transaction",
        "session",
        "sessions",
        "client_report",
        "check_in",
        "user_report",
        "feedback",
        "profile",
        "profile_chunk",
        "log",
        "span",
        "otel_log",
        "otel_span",
        "trace_metric",
        "replay_event",
    }
)


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` this process cannot decode (answered with 415)."""


def _decompress(body: bytes, content_encoding: Optional[str]) -> bytes:
    """Undo ``Content-Encoding`` (applied left to right, so undone right to left)."""
    if not content_encoding:
        return body
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif coding == "deflate":
            # RFC 9110 "deflate" is zlib-wrapped, but raw deflate is common in the wild.
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        elif coding == "br":
            body = _brotli_decompress(body)
        elif coding == "zstd":
            body = _zstd_decompress(body)
        else:
            raise UnsupportedEncoding(coding)
    return body


def _brotli_decompress(body: bytes) -> bytes:
    for name in ("brotli", "brotlicffi"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        result: bytes = module.decompress(body)
        return result
    raise UnsupportedEncoding("br")


def _zstd_decompress(body: bytes) -> bytes:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from compression import zstd  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise UnsupportedEncoding("zstd") from None
        result: bytes = zstd.decompress(body)
        return result
    # Streaming reader: SDKs often omit the content size from the frame header.
    with zstandard.ZstdDecompressor().stream_reader(body) as reader:
        out: bytes = reader.read()
    return out


def _parse_auth(header: Optional[str], query: Dict[str, List[str]]) -> Dict[str, str]:
    """``X-Sentry-Auth: Sentry k=v, k=v`` and/or ``?sentry_key=`` query params as one dict."""
    auth: Dict[str, str] = {}
    for key, values in query.items():
        if key.startswith("sentry_") and values:
            auth[key] = values[0]
    if header:
        text = header.strip()
        if text.lower().startswith("sentry "):
            text = text[len("sentry ") :]
        for part in text.split(","):
            key, sep, value = part.strip().partition("=")
            if sep:
                auth[key.strip()] = value.strip()
    return auth


def parse_envelope(data: bytes) -> Tuple[Dict[str, Any], List[Tuple[Dict[str, Any], Any]]]:
    """Parse a Sentry envelope into ``(headers, [(item_headers, payload), ...])``.

    Written by hand rather than via ``sentry_sdk.envelope`` so that a malformed envelope raises
    ``ValueError`` here instead of being silently truncated, and so payloads of every JSON item
    type (not only events/transactions) come back decoded.
    """
    pos = 0
    end = len(data)

    def read_line() -> bytes:
        nonlocal pos
        nl = data.find(b"\n", pos)
        if nl == -1:
            line, pos = data[pos:], end
        else:
            line, pos = data[pos:nl], nl + 1
        return line

    header_line = read_line().strip()
    headers = json.loads(header_line) if header_line else {}
    if not isinstance(headers, dict):
        raise ValueError("envelope header is not a JSON object")
    items: List[Tuple[Dict[str, Any], Any]] = []
    while pos < end:
        line = read_line().strip()
        if not line:
            continue  # tolerated: trailing newline(s)
        item_headers = json.loads(line)
        if not isinstance(item_headers, dict):
            raise ValueError("envelope item header is not a JSON object")
        length = item_headers.get("length")
        if length is not None:
            if not isinstance(length, int) or length < 0 or pos + length > end:
                raise ValueError(f"bad item length {length!r}")
            raw = data[pos : pos + length]
            pos += length
            if pos < end and data[pos : pos + 1] == b"\n":
                pos += 1
        else:
            raw = read_line()
        payload: Any = raw
        content_type = str(item_headers.get("content_type", ""))
        if item_headers.get("type") in _JSON_ITEM_TYPES or content_type.endswith("json"):
            payload = json.loads(raw)
        items.append((item_headers, payload))
    return headers, items


@dataclass
class ReceivedEnvelope:
    """One request to :class:`SentryIngest`, decoded."""

    path: str
    headers: Dict[str, Any]
    items: List[Tuple[Dict[str, Any], Any]]
    auth: Dict[str, str]
    content_encoding: Optional[str]
    raw: bytes
    #: HTTP request headers (lower-cased names).
    http_headers: Headers = field(default_factory=dict)
    #: Status this receiver answered with (see :meth:`SentryIngest.respond_with`).
    status: int = 200
    #: Why the envelope could not be parsed, if it could not (then ``items`` is empty).
    error: Optional[str] = None

    def payloads(self, item_type: str) -> List[Any]:
        return [payload for item_headers, payload in self.items if item_headers.get("type") == item_type]

    @property
    def accepted(self) -> bool:
        """Parsed and answered with 2xx, i.e. what Sentry would have stored."""
        return self.error is None and 200 <= self.status < 300

    @property
    def item_types(self) -> List[str]:
        return [str(h.get("type")) for h, _ in self.items]


@dataclass
class ReceivedOtlpRequest:
    """One request to :class:`OtlpReceiver` (any signal), before decoding."""

    path: str
    content_type: str
    content_encoding: Optional[str]
    raw: bytes
    http_headers: Headers = field(default_factory=dict)
    status: int = 200


@dataclass
class _Programmed:
    status: int
    headers: Headers
    body: bytes
    remaining: Optional[int]  # None = forever


class _Handler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler that hands the whole request to its server's ``handle_request``."""

    protocol_version = "HTTP/1.1"
    # StreamRequestHandler.setup() sets TCP_NODELAY when this is true. Without it a keep-alive
    # client waits for the delayed ACK (~40 ms) on every request after the first.
    disable_nagle_algorithm = True
    # Idle keep-alive connections release their thread after this long.
    timeout = 30
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: test output should show assertions, not access logs."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body() if self.command in ("POST", "PUT") else b""
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, resp_headers, resp_body = owner._handle(self.command, self.path, headers, body)
        except Exception as exc:  # pragma: no cover - a bug in the receiver itself
            status, resp_headers, resp_body = 500, {"Content-Type": "text/plain"}, repr(exc).encode()
        self.send_response(status)
        for key, value in resp_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp_body)))
        self.end_headers()
        if resp_body and self.command != "HEAD":
            self.wfile.write(resp_body)

    do_POST = do_GET = do_PUT = do_HEAD = do_OPTIONS = _dispatch


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: _LoopbackServer

    def __init__(self, owner: _LoopbackServer) -> None:
        self.owner = owner
        self._conns: Set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN of the address, a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            if alive:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self) -> None:
        """Cut open keep-alive connections so a stopped receiver really stops answering."""
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _LoopbackServer:
    """Shared lifecycle: bind on start, a condition to wait on, programmable responses."""

    _thread_name: ClassVar[str] = "loopback-receiver"

    def __init__(self) -> None:
        # Re-entrant so a wait_for predicate may call the locking accessors.
        self._cond = threading.Condition(threading.RLock())
        self._server: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._programmed: List[_Programmed] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self: _S) -> _S:
        if self._server is not None:
            return self
        server = _HTTPServer(self)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._thread_name, daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- waiting ---------------------------------------------------------------------------
    def wait_for(self: _S, predicate: Callable[[_S], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` is true or ``timeout`` seconds pass; return the last result.

        Woken on every request received, so there is no polling interval to tune.
        """
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout=timeout)

    # -- fault injection -------------------------------------------------------------------
    def respond_with(
        self,
        status: int,
        headers: Optional[Dict[str, str]] = None,
        body: Union[bytes, str] = b"",
        times: Optional[int] = 1,
    ) -> None:
        """Answer the next ``times`` data requests (``None`` = all of them) with this response.

        Queued in order; requests are still recorded (with the status they got). Use
        ``reset_responses()`` to go back to the normal 200.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        data = body.encode() if isinstance(body, str) else body
        with self._cond:
            self._programmed.append(_Programmed(status, dict(headers or {}), data, times))

    def reset_responses(self) -> None:
        with self._cond:
            self._programmed.clear()

    def _next_programmed(self) -> Optional[_Programmed]:
        with self._cond:
            if not self._programmed:
                return None
            programmed = self._programmed[0]
            if programmed.remaining is not None:
                programmed.remaining -= 1
                if programmed.remaining <= 0:
                    self._programmed.pop(0)
            return programmed

    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> _Response:
        raise NotImplementedError


def _json_response(status: int, obj: Any) -> _Response:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


class SentryIngest(_LoopbackServer):
    """Loopback Sentry ingest: point a DSN (``dsn()``) or Spotlight URL (``spotlight_url``) at it.

    Every envelope POSTed to ``/api/<project_id>/envelope/`` or ``/stream`` is decompressed, parsed
    and kept as a :class:`ReceivedEnvelope`. Answers 200 ``{"id": event_id}`` like Sentry, unless
    told otherwise with :meth:`respond_with`.
    """

    _thread_name = "sentry-ingest"

    def __init__(self) -> None:
        super().__init__()
        self._envelopes: List[ReceivedEnvelope] = []

    def dsn(self, public_key: str = "public", project_id: int = 1) -> str:
        return f"http://{public_key}@127.0.0.1:{self.port}/{project_id}"

    @property
    def spotlight_url(self) -> str:
        return self.url + "/stream"

    # -- accessors (all snapshots) -----------------------------------------------------------
    def envelopes(self) -> List[ReceivedEnvelope]:
        with self._cond:
            return list(self._envelopes)

    def items(self, item_type: str) -> List[Any]:
        """Payloads of every item of ``item_type`` in accepted envelopes, in arrival order.

        Envelopes answered with an error (see :meth:`respond_with`) are what Sentry would have
        dropped, so they are left out here; ``envelopes()`` and ``raw_bytes()`` still include them.
        """
        with self._cond:
            return [p for env in self._envelopes if env.accepted for p in env.payloads(item_type)]

    def events(self) -> List[Dict[str, Any]]:
        return self.items("event")

    def transactions(self) -> List[Dict[str, Any]]:
        return self.items("transaction")

    def raw_bytes(self) -> bytes:
        """All decompressed request bodies concatenated, for "did this secret leak?" searches."""
        with self._cond:
            return b"".join(env.raw for env in self._envelopes)

    def clear(self) -> None:
        with self._cond:
            self._envelopes.clear()

    # -- request handling ------------------------------------------------------------------------
    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> _Response:
        parsed = urllib.parse.urlsplit(path)
        segments = [s for s in parsed.path.split("/") if s]
        is_envelope = (
            len(segments) == 3
            and segments[0] == "api"
            and segments[1].isdigit()
            and segments[2] == "envelope"
        )
        is_stream = segments == ["stream"]
        if method == "GET" and segments == ["health"]:
            return 200, {"Content-Type": "text/plain"}, b"ok"
        if method == "OPTIONS" and (is_envelope or is_stream):
            return 204, {"Access-Control-Allow-Origin": "*"}, b""
        if not (is_envelope or is_stream):
            return _json_response(404, {"detail": "not found"})
        if method != "POST":
            return _json_response(405, {"detail": "method not allowed"})

        encoding = headers.get("content-encoding")
        try:
            raw = _decompress(body, encoding)
        except UnsupportedEncoding as exc:
            return _json_response(415, {"detail": f"unsupported content encoding {exc}"})
        except (OSError, EOFError, zlib.error) as exc:
            return _json_response(400, {"detail": f"bad {encoding} body: {exc}"})

        env = ReceivedEnvelope(
            path=parsed.path,
            headers={},
            items=[],
            auth=_parse_auth(headers.get("x-sentry-auth"), urllib.parse.parse_qs(parsed.query)),
            content_encoding=encoding,
            raw=raw,
            http_headers=headers,
        )
        try:
            env.headers, env.items = parse_envelope(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            env.error = f"{type(exc).__name__}: {exc}"
            env.status = 400

        programmed = self._next_programmed()
        if programmed is not None:
            env.status = programmed.status
            response: _Response = (programmed.status, programmed.headers, programmed.body)
        elif env.error is not None:
            response = _json_response(400, {"detail": env.error})
        else:
            event_id = env.headers.get("event_id")
            response = _json_response(200, {"id": event_id} if event_id else {})
        with self._cond:
            self._envelopes.append(env)
            self._cond.notify_all()
        return response


# --------------------------------------------------------------------------------------------------
# OTLP
# --------------------------------------------------------------------------------------------------

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


class OtlpReceiver(_LoopbackServer):
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

    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> _Response:
        url_path = urllib.parse.urlsplit(path).path.rstrip("/")
        signal = self._SIGNALS.get(url_path)
        if signal is None:
            return _json_response(404, {"detail": "not found"})
        if method != "POST":
            return _json_response(405, {"detail": "method not allowed"})
        content_type = headers.get("content-type", "application/x-protobuf").split(";")[0].strip().lower()
        is_json = content_type == "application/json"
        if not is_json and content_type != "application/x-protobuf":
            return _json_response(415, {"detail": f"unsupported content type {content_type}"})
        encoding = headers.get("content-encoding")
        try:
            raw = _decompress(body, encoding)
        except UnsupportedEncoding as exc:
            return _json_response(415, {"detail": f"unsupported content encoding {exc}"})
        except (OSError, EOFError, zlib.error) as exc:
            return _json_response(400, {"detail": f"bad {encoding} body: {exc}"})

        record = ReceivedOtlpRequest(url_path, content_type, encoding, raw, headers)
        spans: List[Dict[str, Any]] = []
        response: _Response
        if signal == "traces":
            try:
                spans = _decode_traces(raw, content_type)
            except Exception as exc:  # DecodeError / ParseError / ValueError: all mean 400
                record.status = 400
                response = _json_response(400, {"detail": f"cannot decode traces: {exc}"})
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
