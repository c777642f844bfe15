"""One benchmark point: N policies on one operator process, measured over a fixed window."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scale import cluster, procstat, promtext
from bench.scale.cluster import Admin

from surge_testbed.wait import StopWaitingError, wait_until

log = logging.getLogger("bench.scale")

TICK = "surge_tick_seconds"
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"
EXECUTED = "apiserver_flowcontrol_request_execution_seconds_count"
SEATS = "apiserver_flowcontrol_work_estimated_seats_sum"
REQUESTS = "apiserver_request_total"
_APISERVER_KEEP = {DISPATCHED, EXECUTED, SEATS, REQUESTS}


@dataclass(frozen=True)
class Settings:
    prometheus_url: str
    cluster_name: str
    work: Path  # logs, py-spy output (not committed)
    window: float
    settle: float
    interval: str
    metrics_port: int
    stats_port: int
    plain: bool
    profile: float
    setup_timeout: float
    operator_env: tuple[tuple[str, str], ...] = ()  # what-if runs: extra environment of the operator
    keep: bool = False  # keep (and reuse) the workloads of a point: for several what-if runs in a row
    clear_status: bool = False  # with keep: empty the policies' status first (a fresh start, not a restart)
    operator_src: Path | None = None  # the operator package exported from a commit (None: the work tree)


def _get(url: str, timeout: float = 30) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body.decode()


def _operator_cmd(s: Settings, kubeconfig: Path, namespace: str) -> list[str]:
    args = [
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        namespace,
        "--prometheus-url",
        s.prometheus_url,
        "--metrics-port",
        str(s.metrics_port),
    ]
    if s.plain:
        return [str(Path(sys.executable).parent / "surge"), *args]
    return [sys.executable, "-m", "bench.scale.instrumented", *args]


@dataclass
class Snapshot:
    at: float
    operator: promtext.Samples
    apiserver: promtext.Samples
    cpu: dict[str, float]
    busy: tuple[float, float]

    @classmethod
    def take(cls, s: Settings, admin: Admin, pids: dict[str, int]) -> Snapshot:
        operator = promtext.parse(_get(f"http://127.0.0.1:{s.metrics_port}/metrics"))
        apiserver = promtext.parse(admin.text("/metrics"), keep=lambda name: name in _APISERVER_KEEP)
        return cls(
            at=time.monotonic(),
            operator=operator,
            apiserver=apiserver,
            cpu={name: procstat.cpu_seconds(pid) for name, pid in pids.items()},
            busy=procstat.machine_busy(),
        )


def _dist_quantile(q: float, dist: dict[str, Any]) -> float:
    cumulative, running = {}, 0
    for bound, count in zip([*dist["bounds"], math.inf], dist["counts"], strict=True):
        running += count
        cumulative[bound] = float(running)
    return promtext.quantile(q, cumulative)


def _breakdown(stats: dict[str, Any], window: float, ticks: float) -> dict[str, Any]:
    """Per-request-kind rates, per-tick counts and latencies from the instrumented operator."""
    per_kind = {}
    for key, r in stats["requests"].items():
        per_kind[key] = {
            "per_s": r["count"] / window,
            "per_tick": r["count"] / ticks if ticks else math.nan,
            "errors": r["errors"],
            "mean_kib": r["bytes"] / r["count"] / 1024 if r["count"] else 0.0,
            "http_mean_ms": 1000 * r["http"]["sum"] / r["count"] if r["count"] else 0.0,
            "http_p99_ms": 1000 * _dist_quantile(0.99, r["http"]),
            "wait_mean_ms": 1000 * r["wait"]["sum"] / r["count"] if r["count"] else 0.0,
            "wait_p99_ms": 1000 * _dist_quantile(0.99, r["wait"]),
        }
    classes = {}
    for name, c in stats["tick_classes"].items():
        n = c["ticks"] or 1
        classes[name] = {
            "ticks": c["ticks"],
            "tick_mean_ms": 1000 * c["seconds"] / n,
            "blocked_mean_ms": 1000 * c["blocked"] / n,  # some blocking call queued or in flight
            "loop_mean_ms": 1000 * (c["seconds"] - c["blocked"]) / n,  # waiting for the event loop
            "queue_wait_mean_ms": 1000 * c["wait"] / n,
            "http_mean_ms": 1000 * c["http"] / n,
            "requests_per_tick": c["requests"] / n,
        }
    per_policy = list(stats["ticks_per_policy"].values())
    return {
        "requests": per_kind,
        "kopf_requests_per_s": {k: v / window for k, v in stats["kopf_requests"].items()},
        "prometheus_queries_per_s": stats["prometheus_queries"]["count"] / window,
        "new_connections_per_s": {k: v / window for k, v in stats["new_connections"].items()},
        "executor_wait_ms": {
            "p50": 1000 * _dist_quantile(0.5, stats["executor_wait"]),
            "p99": 1000 * _dist_quantile(0.99, stats["executor_wait"]),
            "max": 1000 * stats["executor_wait"]["max"],
        },
        "loop_lag_ms": {
            "p50": 1000 * _dist_quantile(0.5, stats["loop_lag"]),
            "p99": 1000 * _dist_quantile(0.99, stats["loop_lag"]),
            "max": 1000 * stats["loop_lag"]["max"],
        },
        "tick_classes": classes,
        "ticks_per_policy": {
            "policies": len(per_policy),
            "min": min(per_policy, default=0),
            "median": statistics.median(per_policy) if per_policy else 0,
            "max": max(per_policy, default=0),
        },
    }


def _profile(pid: int, seconds: float, out: Path) -> dict[str, Any] | None:
    """py-spy (if installed) on the operator after the window: where its CPU time goes (GIL holder only)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not spy or seconds <= 0:
        return None
    raw = out.with_suffix(".collapsed.txt")
    subprocess.run(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "50",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        capture_output=True,
        check=False,
    )
    return summarize_profile(raw) if raw.exists() else None


# A sample belongs to the innermost frame that matches one of these (walking from the leaf to the root):
# a JSON decode inside a pod LIST counts as JSON, asyncio's own scheduling code as the event loop.
_CATEGORIES = (
    ("JSON decode/encode", ("json/",)),
    ("HTTP + TLS (urllib3, http.client, ssl)", ("urllib3/", "http/client.py", "ssl.py", "socket.py")),
    ("kubernetes client (request building)", ("kubernetes/client",)),
    ("surge: pod/metric parsing (surge.metrics, surge.api)", ("surge/metrics/", "surge/api/")),
    ("surge: decision", ("surge/decision/",)),
    ("surge: reconcile, events, actuation", ("surge/",)),
    ("kopf (daemon machinery, live views, watches)", ("kopf/",)),
    ("asyncio event loop (callbacks, futures, selector)", ("asyncio/", "selectors.py")),
    ("thread pool (hand-off to the I/O threads)", ("concurrent/futures", "threading.py", "queue.py")),
)


def _category(frames: list[str]) -> str:
    if "scale/instrumented.py" in frames[-1]:
        return "bench instrumentation (its wrapper, or native code right below it)"
    for frame in reversed(frames):
        for name, patterns in _CATEGORIES:
            if any(p in frame for p in patterns):
                return name
    return "other"


def summarize_profile(raw: Path) -> dict[str, Any]:
    """Collapsed py-spy stacks -> share of samples per category and the top leaf functions."""
    leaf: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaf[frames[-1]] += count
        categories[_category(frames)] += count
    return {
        "samples": total,
        "categories": [(c, round(n / total, 3)) for c, n in categories.most_common()],
        "top_self": [(f, round(c / total, 3)) for f, c in leaf.most_common(12)],
        "collapsed": raw.name,
    }


def run_point(s: Settings, admin: Admin, operator_kubeconfig: Path, variant: str, n: int) -> dict[str, Any]:
    namespace = f"scale-{variant}-{n}"
    logs = s.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    reused = s.keep and cluster.policy_count(admin, namespace) == n
    if reused:  # the policies keep the status a previous operator wrote: an operator restart
        log.info("[%s/%d] reusing the workloads in %s", variant, n, namespace)
        if s.clear_status:
            cluster.clear_statuses(admin, namespace)
    else:
        cluster.delete_namespace(admin, namespace)  # left over from an interrupted run
        log.info("[%s/%d] creating %d Deployments and policies in %s", variant, n, n, namespace)
        cluster.create_workloads(admin, namespace, n, variant, s.interval)

    def ready() -> bool:
        if dead := cluster.dead_components(s.cluster_name):
            raise StopWaitingError(f"bench cluster components not running: {dead}; restart the cluster")
        return cluster.ready_deployments(admin, namespace) >= n

    wait_until(ready, timeout=s.setup_timeout, what=f"{n} ready Deployments", interval=2.0)
    if variant == "cpu":
        wait_until(
            lambda: cluster.pods_with_metrics(admin, namespace) >= n,
            timeout=s.setup_timeout,
            what=f"pod metrics for {n} pods",
            interval=2.0,
        )
    setup_seconds = time.monotonic() - started
    log.info("[%s/%d] workloads ready in %.0fs; starting the operator", variant, n, setup_seconds)

    # KUBECONFIG too: kopf's login reads the kubernetes client's default path, which the client fixes at
    # import time, before `surge run --kubeconfig` exports it (see RESULTS.md, findings).
    env = {**os.environ, "SURGE_BENCH_STATS_PORT": str(s.stats_port), "KUBECONFIG": str(operator_kubeconfig)}
    if s.operator_src is not None:  # ahead of the editable install on sys.path
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(s.operator_src), env.get("PYTHONPATH")]))
    env.update(s.operator_env)
    log_file = (logs / f"operator-{variant}-{n}.log").open("w")
    proc = subprocess.Popen(
        _operator_cmd(s, operator_kubeconfig, namespace), stdout=log_file, stderr=subprocess.STDOUT, env=env
    )
    pids = {"operator": proc.pid, **cluster.control_plane_pids(s.cluster_name)}
    op_started = time.monotonic()
    rss_timeline: list[tuple[float, float]] = []  # (s since start, MB) every 5 s: when does memory grow?
    done = threading.Event()

    def sample_rss() -> None:
        while not done.wait(5.0):
            try:
                mb = procstat.status_kib(proc.pid, "VmRSS") * 1024 / 1e6
            except OSError:
                return
            rss_timeline.append((round(time.monotonic() - op_started), round(mb)))

    threading.Thread(target=sample_rss, name="rss-timeline", daemon=True).start()
    try:

        def answering() -> bool:
            if proc.poll() is not None:
                raise StopWaitingError(f"operator exited with {proc.returncode}; see {log_file.name}")
            try:
                _get(f"http://127.0.0.1:{s.metrics_port}/metrics")
            except OSError:
                return False
            return True

        wait_until(answering, timeout=120, what="the operator's /metrics", interval=0.5)
        wait_until(
            lambda: answering() and cluster.policies_with_status(admin, namespace) >= n,
            timeout=s.setup_timeout,
            what=f"status on all {n} policies",
            interval=3.0,
        )
        first_status = time.monotonic() - op_started
        log.info(
            "[%s/%d] all policies have status after %.0fs; settling %.0fs", variant, n, first_status, s.settle
        )
        time.sleep(s.settle)

        if not s.plain:
            _get(f"http://127.0.0.1:{s.stats_port}/reset")
        before = Snapshot.take(s, admin, pids)
        rss: list[int] = []
        series: list[tuple[float, float]] = []  # (seconds into the window, ticks so far): burstiness
        log.info("[%s/%d] measuring for %.0fs", variant, n, s.window)
        while time.monotonic() - before.at < s.window:
            if proc.poll() is not None:
                raise RuntimeError(f"operator exited with {proc.returncode} during the window")
            rss.append(procstat.status_kib(proc.pid, "VmRSS"))
            scraped = promtext.parse(_get(f"http://127.0.0.1:{s.metrics_port}/metrics"))
            series.append((time.monotonic() - before.at, promtext.total(scraped, f"{TICK}_count")))
            time.sleep(min(2.0, max(0.0, s.window - (time.monotonic() - before.at))))
        after = Snapshot.take(s, admin, pids)
        stats = None if s.plain else json.loads(_get(f"http://127.0.0.1:{s.stats_port}/stats"))
        hwm = procstat.status_kib(proc.pid, "VmHWM")
        traced = (
            json.loads(_get(f"http://127.0.0.1:{s.stats_port}/memory", timeout=900)) if not s.plain else {}
        )
        profile = _profile(proc.pid, s.profile, s.work / f"profile-{variant}-{n}")
    finally:
        done.set()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()

    window = after.at - before.at
    op = promtext.delta(before.operator, after.operator)
    api = promtext.delta(before.apiserver, after.apiserver)
    cumulative = promtext.buckets(op, TICK)
    ticks = cumulative.get(math.inf, 0.0)
    outcomes = {k[0]: v for k, v in promtext.grouped(op, f"{TICK}_count", ("outcome",)).items() if v}
    apf = promtext.total(api, DISPATCHED, flow_schema=cluster.FLOW_SCHEMA)
    by_type = promtext.grouped(api, EXECUTED, ("type",), flow_schema=cluster.FLOW_SCHEMA)
    seats = promtext.total(api, SEATS, flow_schema=cluster.FLOW_SCHEMA)
    server_side = promtext.grouped(api, REQUESTS, ("verb", "group", "resource", "subresource"))
    busy = (after.busy[0] - before.busy[0]) / max(1.0, after.busy[1] - before.busy[1])
    result: dict[str, Any] = {
        "variant": variant,
        "policies": n,
        "interval": s.interval,
        "window_s": round(window, 1),
        "settle_s": s.settle,
        "instrumented": not s.plain,
        "operator_env": dict(s.operator_env),
        # restart: the policies already had a status when the operator started
        "start": "restart" if reused and not s.clear_status else "fresh",
        "setup_s": round(setup_seconds, 1),
        "first_status_s": round(first_status, 1),
        "ticks": ticks,
        "ticks_per_s": ticks / window,
        "outcomes": outcomes,
        "achieved_interval_s": window * n / ticks if ticks else math.inf,
        "tick_p50_s": promtext.quantile(0.5, cumulative),
        "tick_p99_s": promtext.quantile(0.99, cumulative),
        "tick_mean_s": promtext.total(op, f"{TICK}_sum") / ticks if ticks else math.nan,
        "ticks_over_1s": promtext.fraction_above(1.0, cumulative),
        "tick_buckets": {("+Inf" if math.isinf(k) else str(k)): v for k, v in sorted(cumulative.items())},
        "rss_mb": {  # decimal MB, as in the target (250 MB)
            "mean": statistics.fmean(rss) * 1024 / 1e6 if rss else math.nan,
            "max": max(rss, default=0) * 1024 / 1e6,
            "peak_hwm": hwm * 1024 / 1e6,
        },
        "cpu_cores": {name: (after.cpu[name] - before.cpu[name]) / window for name in after.cpu},
        "machine_busy": busy,
        "api": {
            "requests_per_s": apf / window,
            "requests_per_tick": apf / ticks if ticks else math.nan,
            "by_type_per_s": {k[0]: v / window for k, v in by_type.items()},
            "seats_per_s": seats / window,
            "server_side_top": sorted(
                ((" ".join(x for x in k if x), v / window) for k, v in server_side.items() if v > 0),
                key=lambda kv: -kv[1],
            )[:20],
        },
        "client_side": _breakdown(stats, window, ticks) if stats else None,
        "profile": profile,
        "python_heap": traced or None,
        "tick_rate_per_2s": _burstiness(series),
        "rss_timeline_mb": rss_timeline,
        "components_down_after": cluster.dead_components(s.cluster_name),
    }
    log.info(
        "[%s/%d] p50 %.3fs p99 %.3fs interval %.1fs RSS %.0f MB CPU %.2f API %.1f req/s",
        variant,
        n,
        result["tick_p50_s"],
        result["tick_p99_s"],
        result["achieved_interval_s"],
        result["rss_mb"]["max"],
        result["cpu_cores"]["operator"],
        result["api"]["requests_per_s"],
    )
    if not s.keep:
        log.info("[%s/%d] cleaning up namespace %s", variant, n, namespace)
        cluster.delete_namespace(admin, namespace)
    return result


def _burstiness(series: list[tuple[float, float]]) -> dict[str, float]:
    """Tick rate per ~2 s sample: mean and max; a max far above the mean means ticks come in waves."""
    rates = [(c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in itertools.pairwise(series) if t1 > t0]
    if not rates:
        return {}
    return {"mean": statistics.fmean(rates), "max": max(rates), "min": min(rates)}
