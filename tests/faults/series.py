"""A loopback /metrics endpoint whose value a test changes while it runs (Prometheus scrapes it via file_sd).

tests/support/exporter.py serves a fixed text; fault tests move demand up and down, so this one serves
whatever `set()` last stored. Same registration: one file_sd JSON file in the test bed's targets folder.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class MutableSeries:
    """`<metric>{namespace="<ns>"} <value>` on 127.0.0.1; `query` is the PromQL a policy uses."""

    def __init__(self, targets_dir: Path, metric: str, namespace: str, value: float) -> None:
        self._lock = threading.Lock()
        self._value = value
        self.metric, self.namespace = metric, namespace
        self.query = f'sum({metric}{{namespace="{namespace}"}})'
        series = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = series.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.target = f"127.0.0.1:{self._server.server_address[1]}"
        self._sd_file = targets_dir / f"faults-{namespace}-{metric}.json"
        self._sd_file.write_text(
            json.dumps([{"targets": [self.target], "labels": {"job": self._sd_file.stem}}])
        )

    def exposition(self) -> str:
        with self._lock:
            return f'{self.metric}{{namespace="{self.namespace}"}} {self._value}\n'

    def set(self, value: float) -> None:
        with self._lock:
            self._value = value

    def close(self) -> None:
        self._sd_file.unlink(missing_ok=True)
        self._server.shutdown()
        self._server.server_close()


def prometheus_value(prometheus_url: str, query: str) -> float | None:
    """The instant value of `query` now, or None when Prometheus has no sample (or does not answer)."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # loopback only
            body = json.load(response)
    except OSError:
        return None
    result = body.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else None
