"""Sentry's side of the wire: envelope parsing and the loopback ingest (DSN and Spotlight).

Separate from the OTLP receiver because it speaks a different protocol and needs nothing but the
standard library.
"""

from __future__ import annotations

import json
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ._server import Headers, LoopbackServer, Response, UnsupportedEncoding, decompress, json_response

__all__ = ["ReceivedEnvelope", "SentryIngest", "parse_envelope"]

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


class SentryIngest(LoopbackServer):
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
    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> Response:
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
            return json_response(404, {"detail": "not found"})
        if method != "POST":
            return json_response(405, {"detail": "method not allowed"})

        encoding = headers.get("content-encoding")
        try:
            raw = decompress(body, encoding)
        except UnsupportedEncoding as exc:
            return json_response(415, {"detail": f"unsupported content encoding {exc}"})
        except (OSError, EOFError, zlib.error) as exc:
            return json_response(400, {"detail": f"bad {encoding} body: {exc}"})

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
            response: Response = (programmed.status, programmed.headers, programmed.body)
        elif env.error is not None:
            response = json_response(400, {"detail": env.error})
        else:
            event_id = env.headers.get("event_id")
            response = json_response(200, {"id": event_id} if event_id else {})
        with self._cond:
            self._envelopes.append(env)
            self._cond.notify_all()
        return response
