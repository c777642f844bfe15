"""Prometheus text exposition (format 0.0.4) and a tiny asyncio HTTP server for /metrics.

Standard library only, so the game server image needs no extra packages. Families hold one series per label
set; the sim data plane keeps one series per simulated pod and drops a pod's series when the pod goes away.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

LabelSet = tuple[tuple[str, str], ...]
_F = TypeVar("_F", "Family", "Histogram")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def labelset(**labels: str) -> LabelSet:
    return tuple(sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(labels: Iterable[tuple[str, str]]) -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    return "{" + ",".join(parts) + "}" if parts else ""


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Family:
    """A gauge or counter family: name, help, type and one value per label set."""

    name: str
    help: str
    kind: str  # "gauge" | "counter"
    values: dict[LabelSet, float] = field(default_factory=dict)

    def set(self, labels: LabelSet, value: float) -> None:
        self.values[labels] = float(value)

    def inc(self, labels: LabelSet, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, labels: LabelSet) -> float:
        return self.values.get(labels, 0.0)

    def drop(self, labels: LabelSet) -> None:
        self.values.pop(labels, None)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{_fmt_labels(k)} {_fmt_value(v)}" for k, v in sorted(self.values.items())]
        return lines


@dataclass
class _HistogramSeries:
    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class Histogram:
    """A histogram family with fixed upper bounds (a +Inf bucket is implied)."""

    name: str
    help: str
    buckets: tuple[float, ...]
    series: dict[LabelSet, _HistogramSeries] = field(default_factory=dict)

    def observe(self, labels: LabelSet, value: float) -> None:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = _HistogramSeries(counts=[0] * len(self.buckets))
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            s.counts[index] += 1
        s.total += value
        s.count += 1

    def drop(self, labels: LabelSet) -> None:
        self.series.pop(labels, None)

    def count(self, labels: LabelSet) -> int:
        s = self.series.get(labels)
        return s.count if s else 0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, s in sorted(self.series.items()):
            cumulative = 0
            for bound, n in zip(self.buckets, s.counts, strict=True):
                cumulative += n
                le = (*labels, ("le", _fmt_value(bound)))
                lines.append(f"{self.name}_bucket{_fmt_labels(le)} {cumulative}")
            lines.append(f"{self.name}_bucket{_fmt_labels((*labels, ('le', '+Inf')))} {s.count}")
            lines.append(f"{self.name}_sum{_fmt_labels(labels)} {_fmt_value(s.total)}")
            lines.append(f"{self.name}_count{_fmt_labels(labels)} {s.count}")
        return lines


class Registry:
    """An ordered set of families rendered together."""

    def __init__(self) -> None:
        self._families: list[Family | Histogram] = []

    def gauge(self, name: str, help_text: str) -> Family:
        return self._add(Family(name, help_text, "gauge"))

    def counter(self, name: str, help_text: str) -> Family:
        return self._add(Family(name, help_text, "counter"))

    def histogram(self, name: str, help_text: str, buckets: tuple[float, ...]) -> Histogram:
        return self._add(Histogram(name, help_text, tuple(sorted(buckets))))

    def _add(self, family: _F) -> _F:
        if any(f.name == family.name for f in self._families):
            raise ValueError(f"metric {family.name} registered twice")
        self._families.append(family)
        return family

    def drop_labels(self, labels: LabelSet) -> None:
        """Forgets every series with exactly these labels (a pod that went away)."""
        for family in self._families:
            family.drop(labels)

    def render(self) -> str:
        lines: list[str] = []
        for family in self._families:
            lines += family.render()
        return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `render()` on GET /metrics (anything else: 404); one request per connection."""

    def __init__(self, render: Callable[[], str], host: str = "127.0.0.1", port: int = 0) -> None:
        self._render = render
        self._host, self._port = host, port
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while True:  # drain the headers (bounded by the read timeout and the stream limit)
                line = await asyncio.wait_for(reader.readline(), timeout=5)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if len(parts) >= 2 and parts[0] in ("GET", "HEAD") and path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE, self._render().encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found: try /metrics\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if parts and parts[0] != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("metrics request failed: %r", exc)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
