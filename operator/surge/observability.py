"""The operator's own Prometheus metrics: tick latency per outcome, served on /metrics."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

from aiohttp import web

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """A labelled cumulative histogram in Prometheus' text format (one label: outcome)."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = _BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0] * (len(buckets) + 1))
        self._sums: dict[str, float] = defaultdict(float)

    def observe(self, value: float, outcome: str) -> None:
        with self._lock:
            self._counts[outcome][bisect.bisect_left(self.buckets, value)] += 1
            self._sums[outcome] += value

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for outcome, counts in sorted(self._counts.items()):
                cumulative = 0
                for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'{self.name}_bucket{{outcome="{outcome}",le="{le}"}} {cumulative}')
                lines.append(f'{self.name}_sum{{outcome="{outcome}"}} {self._sums[outcome]}')
                lines.append(f'{self.name}_count{{outcome="{outcome}"}} {cumulative}')
        return "\n".join(lines) + "\n"


TICK_SECONDS = Histogram(
    "surge_tick_seconds", "Duration of one policy evaluation (observe, decide, act, status)."
)


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(text=TICK_SECONDS.render(), content_type="text/plain")


async def serve_metrics(port: int, host: str = "0.0.0.0") -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
