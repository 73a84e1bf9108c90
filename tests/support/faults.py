"""A TCP fault proxy in front of a loopback Sentry ingest: the failures no real server makes on demand.

``FaultProxy(target_port)`` listens on 127.0.0.1 and, per mode, either forwards connections to the
target (``pass``) or misbehaves: ``hang`` (accepts, reads, never answers), ``trickle`` (answers a valid
200 one byte per second), ``reset`` (reads the request, then closes with RST), ``refuse`` (nothing
listens on the port). Switching modes cuts every open connection, so a keep-alive client meets the new
mode on its next request. Status-code faults (429, 500, 413) need no proxy: use
``SentryIngest.respond_with``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from typing import List, Optional

MODES = ("pass", "hang", "trickle", "reset", "refuse")
_TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class FaultProxy:
    def __init__(self, target_port: int, mode: str = "pass") -> None:
        self.target_port = target_port
        self._mode = mode
        self._lock = threading.Lock()
        self._conns: List[socket.socket] = []
        self._listener: Optional[socket.socket] = None
        self._stopped = False
        self.connections = 0  # accepted so far, in any mode
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        if mode != "refuse":
            self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dsn(self, public_key: str = "public", project_id: int = 1) -> str:
        return f"http://{public_key}@127.0.0.1:{self.port}/{project_id}"

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        with self._lock:
            previous, self._mode = self._mode, mode
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # also wakes the thread blocked reading it
        if mode == "refuse" and previous != "refuse":
            self._unlisten()
        elif mode != "refuse" and previous == "refuse":
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(50):  # the port was ours a moment ago; TIME_WAIT may linger briefly
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="fault-proxy").start()

    def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
                mode = self._mode
            threading.Thread(target=self._serve, args=(conn, mode), daemon=True).start()

    def _serve(self, conn: socket.socket, mode: str) -> None:
        try:
            if mode == "pass":
                self._forward(conn)
            elif mode == "hang":
                while conn.recv(65536):
                    pass
            elif mode == "trickle":
                _read_request(conn)
                for byte in _TRICKLE:
                    conn.sendall(bytes([byte]))
                    time.sleep(1.0)
            elif mode == "reset":
                _read_request(conn)
                _close_hard(conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _forward(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        for sock in (conn, upstream):  # relay small segments at once (no Nagle/delayed-ACK stall)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conns.append(upstream)
        try:
            pair = {conn: upstream, upstream: conn}
            while True:
                readable, _, _ = select.select(list(pair), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        finally:
            with contextlib.suppress(OSError):
                upstream.close()

    def close(self) -> None:
        self._stopped = True
        self.set_mode("refuse")

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_request(conn: socket.socket) -> None:
    """Read one HTTP request (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _close_hard(conn: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()
