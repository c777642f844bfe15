"""`surge run` with client-side counters for the scale bench: `python -m bench.scale.instrumented run ...`.

The operator's code is not changed; this module wraps it from the outside before `surge.cli.main` runs:
- every request of the kubernetes client (surge's reads and writes), timed including the body read, and
  how long it waited in the operator's thread pool before a worker picked it up;
- every request kopf makes through aiohttp (watches, finalizer patches) and every PromQL query (counted);
- new TCP/TLS connections per host (a full urllib3 pool silently reconnects);
- `reconcile_once`: ticks per policy, and per tick the span covered by blocking calls (queue + HTTP);
- the event loop: how late a 50 ms timer fires (lag = time the loop was busy with something else).
Totals are served as JSON on 127.0.0.1:$SURGE_BENCH_STATS_PORT: GET /stats, GET /reset (new window).
What-if knob (off by default): SURGE_BENCH_TRACEMALLOC=1 traces Python allocations and serves the biggest
owners on GET /memory.
The API server's own metrics remain the authority for request rates; these explain them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Dist:
    """A small histogram: count, sum, max and cumulative-ready bucket counts (upper bounds _BOUNDS, +Inf)."""

    count: int = 0
    total: float = 0.0
    peak: float = 0.0
    counts: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS) + 1))

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.peak = max(self.peak, value)
        self.counts[bisect.bisect_left(_BOUNDS, value)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": self.total,
            "max": self.peak,
            "bounds": _BOUNDS,
            "counts": self.counts,
        }


@dataclass
class RequestStats:
    count: int = 0
    errors: int = 0
    bytes: int = 0
    wait: Dist = field(default_factory=Dist)  # thread-pool queue before the call started
    http: Dist = field(default_factory=Dist)  # request + response body, as seen by the worker thread


@dataclass
class TickClass:
    """Sums over the ticks of one duration class, to split where their time went."""

    ticks: int = 0
    seconds: float = 0.0
    blocked: float = 0.0  # union of [submitted, answered] spans of the tick's blocking calls
    wait: float = 0.0  # sum of queue waits
    http: float = 0.0  # sum of HTTP times
    requests: int = 0


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)
    requests: dict[str, RequestStats] = field(default_factory=lambda: defaultdict(RequestStats))
    kopf: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    prometheus: RequestStats = field(default_factory=RequestStats)
    connections: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    executor_wait: Dist = field(default_factory=Dist)
    loop_lag: Dist = field(default_factory=Dist)
    tick: Dist = field(default_factory=Dist)
    ticks_per_policy: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tick_classes: dict[str, TickClass] = field(default_factory=lambda: defaultdict(TickClass))

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "seconds": time.monotonic() - self.started,
                "requests": {
                    k: {
                        "count": r.count,
                        "errors": r.errors,
                        "bytes": r.bytes,
                        "wait": r.wait.to_dict(),
                        "http": r.http.to_dict(),
                    }
                    for k, r in sorted(self.requests.items())
                },
                "kopf_requests": dict(sorted(self.kopf.items())),
                "prometheus_queries": {
                    "count": self.prometheus.count,
                    "errors": self.prometheus.errors,
                    "http": self.prometheus.http.to_dict(),
                },
                "new_connections": dict(self.connections),
                "executor_wait": self.executor_wait.to_dict(),
                "loop_lag": self.loop_lag.to_dict(),
                "tick": self.tick.to_dict(),
                "ticks_per_policy": dict(self.ticks_per_policy),
                "tick_classes": {k: vars(v) for k, v in sorted(self.tick_classes.items())},
            }


STATS = Stats()
_local = threading.local()  # per worker: (submitted, wait) of the call it is running
# The tick a request belongs to: asyncio.to_thread copies the context into the worker thread.
_TICK: contextvars.ContextVar[list[tuple[str, float, float, float]] | None] = contextvars.ContextVar(
    "surge_bench_tick", default=None
)


def reset() -> None:
    global STATS
    STATS = Stats()


def classify(method: str, url: str, params: Mapping[str, Any] | None = None) -> str:
    """'LIST pods', 'GET deployments.apps/scale', 'PATCH autoscalepolicies.autoscaling.surge.dev/status'."""
    method = method.upper()  # aiohttp (kopf) passes it lower-case
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {
        k: str(v) for k, v in (params or {}).items()
    }
    segs = [s for s in parts.path.split("/") if s]
    if segs[:2] == ["api", "v1"]:
        group, rest = "", segs[2:]
    elif segs[:1] == ["apis"] and len(segs) >= 3:
        group, rest = segs[1], segs[3:]
    else:
        return f"{method} {parts.path}"
    if not rest:
        return f"{method} discovery {group or 'core'}"
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    resource = rest[0] + (f".{group}" if group else "")
    verb = method
    if method == "GET" and len(rest) == 1:
        verb = "WATCH" if query.get("watch", "").lower() in ("true", "1") else "LIST"
    return f"{verb} {resource}" + (f"/{rest[2]}" if len(rest) > 2 else "")


def _record_request(key: str, t0: float, error: bool, size: int) -> None:
    end = time.perf_counter()
    submitted, wait = getattr(_local, "call", (t0, 0.0))
    _local.call = (t0, 0.0)  # only the first request of a thread-pool call waited in the queue
    with STATS.lock:
        r = STATS.requests[key]
        r.count += 1
        r.errors += error
        r.bytes += size
        r.wait.observe(wait)
        r.http.observe(end - t0)
    record = _TICK.get()
    if record is not None:
        record.append((key, submitted, t0, end))


def _patch_kubernetes_client() -> None:
    from kubernetes.client import rest

    original: Callable[..., Any] = rest.RESTClientObject.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        key = classify(method, url)
        try:
            response = original(self, method, url, *args, **kwargs)
            data = response.read()  # cached by RESTResponse: the caller's read() costs nothing
        except Exception:
            _record_request(key, t0, True, 0)
            raise
        _record_request(key, t0, not 200 <= response.status <= 299, len(data or b""))
        return response

    rest.RESTClientObject.request = request  # type: ignore[method-assign]


def memory() -> dict[str, Any]:
    if not tracemalloc.is_tracing():
        return {}
    snapshot = tracemalloc.take_snapshot()
    by_file = snapshot.statistics("filename")
    by_line = snapshot.statistics("lineno")
    return {
        "traced_bytes": tracemalloc.get_traced_memory()[0],
        "by_file": [(str(s.traceback), s.size, s.count) for s in by_file[:25]],
        "by_line": [(str(s.traceback), s.size, s.count) for s in by_line[:25]],
    }


def _patch_requests() -> None:
    import requests

    original: Callable[..., Any] = requests.Session.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, method, url, *args, **kwargs)
        except Exception:
            with STATS.lock:
                STATS.prometheus.errors += 1
            raise
        finally:
            with STATS.lock:
                STATS.prometheus.count += 1
                STATS.prometheus.http.observe(time.perf_counter() - t0)

    setattr(requests.Session, "request", request)  # noqa: B010  (mypy: no method assignment)


def _patch_aiohttp() -> None:
    import aiohttp

    original = aiohttp.ClientSession._request

    async def _request(self: Any, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        key = classify(method, str(str_or_url), kwargs.get("params"))
        with STATS.lock:
            STATS.kopf[key] += 1
        return await original(self, method, str_or_url, *args, **kwargs)

    aiohttp.ClientSession._request = _request  # type: ignore[method-assign]


def _patch_urllib3() -> None:
    from urllib3 import connectionpool

    for pool in (connectionpool.HTTPConnectionPool, connectionpool.HTTPSConnectionPool):
        original = pool._new_conn

        def _new_conn(self: Any, _original: Callable[[Any], Any] = original) -> Any:
            with STATS.lock:
                STATS.connections[f"{self.host}:{self.port}"] += 1
            return _original(self)

        pool._new_conn = _new_conn  # type: ignore[method-assign]


class TimedThreadPoolExecutor(ThreadPoolExecutor):
    """Records how long each call waits for a free worker."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        submitted = time.perf_counter()

        def timed() -> Any:
            wait = time.perf_counter() - submitted
            _local.call = (submitted, wait)
            with STATS.lock:
                STATS.executor_wait.observe(wait)
            return fn(*args, **kwargs)

        return super().submit(timed)


def _union(spans: list[tuple[float, float]]) -> float:
    covered, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop > end:
            covered += stop - max(start, end)
            end = stop
    return covered


def _patch_operator() -> None:
    import kopf

    import surge.handlers as handlers

    original: Callable[..., Any] = getattr(handlers, "reconcile_once")  # noqa: B009

    async def reconcile_once(deps: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        record: list[tuple[str, float, float, float]] = []
        token = _TICK.set(record)
        t0 = time.perf_counter()
        try:
            return await original(deps, obj, *args, **kwargs)
        finally:
            seconds = time.perf_counter() - t0
            _TICK.reset(token)
            blocked = _union([(s, e) for _, s, _, e in record])
            with STATS.lock:
                STATS.tick.observe(seconds)
                STATS.ticks_per_policy[f"{obj.namespace}/{obj.name}"] += 1
                for name, limit in (("all", 0.0), ("over_0.5s", 0.5), ("over_1s", 1.0)):
                    if seconds > limit or name == "all":
                        c = STATS.tick_classes[name]
                        c.ticks += 1
                        c.seconds += seconds
                        c.blocked += blocked
                        c.wait += sum(t - s for _, s, t, _ in record)
                        c.http += sum(e - t for _, _, t, e in record)
                        c.requests += len(record)

    # Module globals the start-up handler looks up at call time: its tick function (handed to the
    # supervisor) calls reconcile_once, and it builds the default executor.
    setattr(handlers, "reconcile_once", reconcile_once)  # noqa: B010
    setattr(handlers, "ThreadPoolExecutor", TimedThreadPoolExecutor)  # noqa: B010

    async def probe_loop_lag() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.05)
            lag = time.perf_counter() - t0 - 0.05
            with STATS.lock:
                STATS.loop_lag.observe(max(lag, 0.0))

    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup()
    async def start_lag_probe(**_: Any) -> None:
        tasks.append(asyncio.create_task(probe_loop_lag()))

    @kopf.on.cleanup()
    async def stop_lag_probe(**_: Any) -> None:
        for task in tasks:
            task.cancel()


class _StatsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/reset":
            reset()
        body = json.dumps(memory() if self.path == "/memory" else STATS.to_dict()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return


def main() -> int:
    port = int(os.environ.get("SURGE_BENCH_STATS_PORT", "0"))
    if os.environ.get("SURGE_BENCH_TRACEMALLOC") == "1":
        tracemalloc.start()
    _patch_kubernetes_client()
    _patch_requests()
    _patch_aiohttp()
    _patch_urllib3()
    _patch_operator()
    if port:
        server = ThreadingHTTPServer(("127.0.0.1", port), _StatsHandler)
        threading.Thread(target=server.serve_forever, name="bench-stats", daemon=True).start()
    from surge.cli import main as surge_main

    return surge_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
