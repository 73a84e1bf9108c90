"""Request bodies in error events, as sentry-sdk's ``max_request_body_size``, without touching the
app's stream.

The ASGI ``receive`` channel is teed: every ``http.request`` message the app reads passes through
unchanged and at once, and its bytes are copied aside up to the configured cap. Nothing is read that
the app did not read, so a body is never consumed or delayed. When a failed request's event is
built, the copy becomes ``request.data`` the way sentry-sdk's Starlette/FastAPI integration fills it
(``integrations/starlette.py``, ``StarletteRequestExtractor``, sentry-sdk 2.75):

* size by the ``Content-Length`` header: ``never`` sends nothing, ``small`` up to 1,000 bytes,
  ``medium`` (the default) up to 10,000 bytes, ``always`` any size (kept here up to ``ALWAYS_CAP``,
  the size of one Sentry event, so one request cannot hold unbounded memory); over the limit,
  ``data`` is ``""`` with ``_meta`` ``{"rem": [["!config", "x"]]}``;
* a JSON body as parsed JSON; a form (urlencoded or multipart) as its fields, uploaded files as
  ``""`` with ``{"rem": [["!raw", "x"]]}``; any other body as ``""`` with that same mark: raw
  bytes are never sent;
* no ``Content-Length`` (a chunked upload): no ``data``, as sentry-sdk.

The event then passes through the one scrubber (sensitive field names, credential patterns) and the
request's own secrets (``_request_secrets``), which also learn the body's sensitive fields here.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import urllib.parse
from typing import Any, Awaitable, Callable, Optional

from . import _request_secrets

SCOPE_KEY = "otel_sentry.request_body"
SIZES = {"never": 0, "small": 10**3, "medium": 10**4, "always": None}
ALWAYS_CAP = 1024 * 1024  # Sentry's limit for one event item: a bigger body could never be sent whole
OVER_SIZE = {"": {"rem": [["!config", "x"]]}}
RAW = {"": {"rem": [["!raw", "x"]]}}
# Bodies are parsed for secrets only when one of these words is in them (most requests: never).
_SENSITIVE_WORDS = re.compile(
    rb"(?i)pass|pwd|secret|token|key|auth|cookie|session|card|ssn|sign|dsn|cred|private"
)

Receive = Callable[[], Awaitable[dict[str, Any]]]


def _header(scope: dict[str, Any], name: bytes) -> Optional[str]:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _kind(content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media == "multipart/form-data":
        return "multipart"
    return "raw"


class RequestBody:
    """The bytes of one request body the app read, up to the cap."""

    __slots__ = ("cap", "chunks", "complete", "content_length", "content_type", "kind", "over", "size")

    def __init__(self, cap: int, content_type: str, content_length: Optional[int]) -> None:
        self.cap = cap
        self.content_type = content_type
        self.kind = _kind(content_type)
        self.content_length = content_length
        self.chunks: list[bytes] = []
        self.size = 0
        self.over = content_length is not None and content_length > cap
        self.complete = False

    def wrap(self, receive: Receive) -> Receive:
        async def teed_receive() -> dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request" and not self.complete:
                self._observe(message)
            return message

        return teed_receive

    def _observe(self, message: dict[str, Any]) -> None:
        chunk = message.get("body") or b""
        if chunk and not self.over:
            if self.size + len(chunk) > self.cap:
                self.over, self.chunks = True, []  # what was kept is dropped: never sent in part
            else:
                self.chunks.append(bytes(chunk))
                self.size += len(chunk)
        if not message.get("more_body", False):
            self.complete = True
            if not self.over and self.kind != "raw":
                self._learn_secrets()

    def body(self) -> bytes:
        return b"".join(self.chunks)

    def _learn_secrets(self) -> None:
        data = self.body()
        if data and _SENSITIVE_WORDS.search(data):
            parsed = self.parsed()
            if parsed is not None:
                _request_secrets.learn_body(parsed)

    def parsed(self) -> Any:
        """The JSON value or the form's fields (files as None); None when unparsable."""
        data = self.body()
        try:
            if self.kind == "json":
                return json.loads(data)
            if self.kind == "form":
                return dict(urllib.parse.parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True))
            if self.kind == "multipart":
                return _multipart_fields(self.content_type, data)
        except (ValueError, UnicodeDecodeError):
            return None
        return None

    def text_field(self, name: str) -> Optional[str]:
        """A top-level text field of a JSON body the app read whole (the ``model`` an inference
        request names); None otherwise."""
        if self.kind != "json" or self.over or not self.complete:
            return None
        parsed = self.parsed()
        value = parsed.get(name) if isinstance(parsed, dict) else None
        return value if isinstance(value, str) and value.strip() else None

    def event_data(self) -> Optional[tuple[Any, Optional[dict[str, Any]]]]:
        """(request.data, its _meta) as sentry-sdk would send them, or None for no data."""
        if not self.content_length:
            return None
        if self.over:
            return "", OVER_SIZE
        if not self.complete:
            return None  # the app failed before reading its body; it is not read for it
        parsed = self.parsed() if self.kind != "raw" else None
        if parsed is None or parsed == {}:
            return "", RAW
        if isinstance(parsed, dict) and self.kind == "multipart":
            files = {k: RAW for k, v in parsed.items() if v is None}
            data = {k: ("" if v is None else v) for k, v in parsed.items()}
            return data, (files or None)
        return parsed, None


def _multipart_fields(content_type: str, data: bytes) -> dict[str, Optional[str]]:
    """Text fields by name; files as None (their bytes are never sent)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + data)
    fields: dict[str, Optional[str]] = {}
    if not message.is_multipart():
        raise ValueError("not multipart")
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        if part.get_filename() is not None:
            fields[name] = None
            continue
        payload = part.get_payload(decode=True)
        text = payload if isinstance(payload, bytes) else b""
        fields[name] = text.decode(part.get_content_charset() or "utf-8", "replace")
    return fields


def start(scope: dict[str, Any], receive: Receive, max_request_body_size: str) -> Receive:
    """The receive channel to hand the app: teed when the request has a body worth keeping."""
    cap = SIZES.get(max_request_body_size, 0)
    if cap == 0:
        return receive
    length_header = _header(scope, b"content-length")
    try:
        content_length = int(length_header) if length_header is not None else None
    except ValueError:
        content_length = None
    if content_length == 0 or (content_length is None and scope.get("method") in ("GET", "HEAD")):
        return receive
    body = RequestBody(
        ALWAYS_CAP if cap is None else cap, _header(scope, b"content-type") or "", content_length
    )
    scope[SCOPE_KEY] = body
    return body.wrap(receive)


def body_expected(scope: dict[str, Any]) -> bool:
    return SCOPE_KEY in scope


def add_to_event(http: dict[str, Any], event: dict[str, Any], body: Optional[RequestBody]) -> None:
    """Set ``request.data`` (and its ``_meta``) on an event's request interface."""
    if body is None:
        return
    found = body.event_data()
    if found is None:
        return
    data, meta = found
    http["data"] = data
    if meta is not None:
        event.setdefault("_meta", {}).setdefault("request", {})["data"] = meta
