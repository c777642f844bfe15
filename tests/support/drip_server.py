"""Loopback HTTP servers that misbehave on purpose, for the Prometheus client's tests.

`DripServer` answers every request one byte at a time (a server that is alive but never finishes, the
failure that per-read timeouts miss). `AnswerServer` gives a scripted answer and counts the requests it got,
so a test can prove that a refused server was never contacted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    # Close the connection after answering without saying so (an idle keep-alive timing out).
    close_after: bool = False


def prometheus_vector(*series: tuple[dict[str, str], str], ts: float | None = None) -> bytes:
    """A JSON instant-vector answer; `ts` defaults to now so the result is fresh."""
    stamp = time.time() if ts is None else ts
    result = [{"metric": labels, "value": [stamp, value]} for labels, value in series]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


class AnswerServer:
    """Answers each request with `respond(path)`; counts connections and requests, keeps paths."""

    def __init__(self, respond: Callable[[str], Answer]) -> None:
        self.requests = 0
        self.connections = 0
        self.paths: list[str] = []
        self.accept_encodings: list[str | None] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with owner._lock:
                    owner.connections += 1

            def do_GET(self) -> None:
                with owner._lock:
                    owner.requests += 1
                    owner.paths.append(self.path)
                    owner.accept_encodings.append(self.headers.get("Accept-Encoding"))
                answer = respond(self.path)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in answer.headers and "Transfer-Encoding" not in answer.headers:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
                if answer.close_after:
                    self.close_connection = True

            do_POST = do_GET  # noqa: N815 - http.server dispatches on this name

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class DripServer:
    """Reads a request, then sends `payload` one byte every `interval` seconds while the client listens.

    `connections` counts accepted connections; `disconnected` how many clients went away mid-drip (their
    socket was closed or shut down), so a test can see that an abandoned request really ended.
    """

    def __init__(self, interval: float = 2.0, payload: bytes | None = None) -> None:
        self.interval = interval
        self.payload = payload or (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b" " * 1000
        )
        self.connections = 0
        self.disconnected = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self.interval)
            request = b""
            while b"\r\n\r\n" not in request and not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                request += chunk
            conn.settimeout(None)  # blocking, so the MSG_DONTWAIT peek below answers at once
            for byte in self.payload:
                try:
                    conn.sendall(bytes([byte]))
                    # A closed client shows as EOF here (or as a reset on the next send).
                    if self._stop.wait(0) or conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        break
                except BlockingIOError:
                    pass
                except OSError:
                    break
                if self._stop.wait(self.interval):
                    return
            else:
                return
            with self._lock:
                self.disconnected += 1

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@contextmanager
def drip_server(interval: float = 2.0) -> Iterator[DripServer]:
    server = DripServer(interval)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def answer_server(respond: Callable[[str], Answer]) -> Iterator[AnswerServer]:
    server = AnswerServer(respond)
    try:
        yield server
    finally:
        server.close()
