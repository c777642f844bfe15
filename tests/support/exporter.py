"""A loopback /metrics endpoint registered with the test bed's Prometheus through file_sd."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:  # keep pytest output clean
        pass


@contextmanager
def loopback_series(targets_dir: Path, name: str, exposition: str) -> Iterator[str]:
    """Serves `exposition` (Prometheus text format) on 127.0.0.1 and yields the target address."""
    handler = type("Series", (_Handler,), {"body": exposition.encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"127.0.0.1:{server.server_address[1]}"
    sd_file = targets_dir / f"{name}.json"
    sd_file.write_text(json.dumps([{"targets": [target], "labels": {"job": name}}]))
    try:
        yield target
    finally:
        sd_file.unlink(missing_ok=True)
        server.shutdown()
