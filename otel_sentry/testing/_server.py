"""The threaded loopback HTTP server both receivers share.

One place for what every fake backend needs and none should re-implement: binding 127.0.0.1 on a
free port, keep-alive without Nagle delays, undoing ``Content-Encoding``, programmed (fault-injected)
responses, and a condition to wait on instead of sleeping.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Callable, ClassVar, Dict, List, Optional, Set, Tuple, Type, TypeVar, Union

__all__ = [
    "Headers",
    "LoopbackServer",
    "Response",
    "UnsupportedEncoding",
    "decompress",
    "json_response",
]

_S = TypeVar("_S", bound="LoopbackServer")

Headers = Dict[str, str]
# (status, headers, body) as returned by a request handler.
Response = Tuple[int, Headers, bytes]


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` this process cannot decode (answered with 415)."""


def decompress(body: bytes, content_encoding: Optional[str]) -> bytes:
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
    owner: LoopbackServer

    def __init__(self, owner: LoopbackServer) -> None:
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


class LoopbackServer:
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

    def _handle(self, method: str, path: str, headers: Headers, body: bytes) -> Response:
        raise NotImplementedError


def json_response(status: int, obj: Any) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()
