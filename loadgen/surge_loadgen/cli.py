"""`surge-loadgen` / `python -m surge_loadgen`: argument parsing and wiring only.

  surge-loadgen run --plane sim --namespace NS --deployment NAME --scenario launch-spike \\
      --time-scale 0.2 --out DIR
  surge-loadgen run --plane real --servers 127.0.0.1:7000,127.0.0.1:7001 --scenario launch-spike \\
      --time-scale 0.1 --players-scale 0.05 --out DIR
  surge-loadgen run --plane real --servers-from-k8s games/app=arena ...   # in a pod: the Ready game pods
  surge-loadgen scenarios                       # list the built-in scenarios
  surge-loadgen summarize DIR/timeline.csv      # recompute summary.json + timeline.png from a timeline
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from surge_game import vocabulary as v

from surge_loadgen import trace as traces
from surge_loadgen.model import PatchBatcher
from surge_loadgen.runner import Plane, RunResult, run, write_outputs
from surge_loadgen.summary import summarize
from surge_loadgen.timeline import read_csv


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="surge-loadgen", description="Trace-driven load for Surge's game fleet."
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run", help="play a scenario against a fleet and write summary.json, timeline.png/.csv"
    )
    src = r.add_mutually_exclusive_group()
    src.add_argument("--scenario", default="launch-spike", help=f"built-in: {', '.join(traces.BUILTINS)}")
    src.add_argument("--trace", type=Path, help="any CSV or YAML trace file (seconds, players)")
    r.add_argument("--time-scale", type=_positive, default=1.0, help="0.2 = play 5x faster (default 1)")
    r.add_argument("--players-scale", type=_positive, default=1.0, help="multiply every demand value")
    r.add_argument("--plane", choices=("sim", "real"), required=True)
    r.add_argument(
        "--out", type=Path, required=True, help="folder for summary.json, timeline.png, timeline.csv"
    )
    r.add_argument("--step", type=_positive, default=1.0, help="seconds between steps (default 1)")
    r.add_argument("--progress-every", type=_positive, default=5.0, help="seconds between progress lines")
    r.add_argument(
        "--players-per-core",
        type=_positive,
        default=v.DEFAULT_PLAYERS_PER_CORE,
        help="capacity formula: floor(cpu cores * this) (sim; real servers report their own)",
    )

    sim = r.add_argument_group("sim plane (embedded KWOK cluster)")
    sim.add_argument("--namespace", help="namespace of the target Deployment")
    sim.add_argument("--deployment", help="the target Deployment (its Ready pods are the fleet)")
    sim.add_argument("--container", help="container whose CPU request sets capacity (default: the first)")
    sim.add_argument(
        "--kubeconfig",
        help="(sim, --servers-from-k8s) default: $SURGE_KUBECONFIG, $KUBECONFIG, ~/.kube/config, in-cluster",
    )
    sim.add_argument(
        "--prometheus-targets",
        type=Path,
        default=os.environ.get("SURGE_PROMETHEUS_TARGETS"),
        help="file_sd folder to register the /metrics endpoint in (default $SURGE_PROMETHEUS_TARGETS)",
    )
    sim.add_argument("--metrics-host", default="127.0.0.1")
    sim.add_argument("--metrics-port", type=int, default=0, help="0 = any free port")
    sim.add_argument(
        "--patch-interval",
        type=_positive,
        default=5.0,
        help="min seconds between two usage patches of one pod (default 5)",
    )
    sim.add_argument(
        "--cpu-base", type=float, default=v.CostModel.base_cpu_millis, help="idle CPU per pod (m)"
    )
    sim.add_argument(
        "--memory-base", type=float, default=v.CostModel.base_memory_mib, help="idle memory (Mi)"
    )
    sim.add_argument("--memory-per-player", type=float, default=v.CostModel.memory_per_player_mib, help="Mi")

    real = r.add_argument_group("real plane (bots over TCP)")
    real.add_argument("--servers", help="comma-separated host:port game servers")
    real.add_argument(
        "--servers-from-k8s",
        metavar="NAMESPACE/SELECTOR",
        help="instead of --servers: the Ready pods matching the label selector (port named 'game', else "
        "7000), listed again every 3 s; needs 'list pods' in NAMESPACE",
    )
    real.add_argument("--input-rate", type=_positive, default=2.0, help="inputs per second per bot")
    real.add_argument("--max-bots", type=int, default=2000, help="hard cap on concurrent bots")

    sub.add_parser("scenarios", help="list the built-in scenarios")
    s = sub.add_parser("summarize", help="recompute summary.json and timeline.png from a timeline.csv")
    s.add_argument("timeline", type=Path)
    s.add_argument("--scenario", default="unknown")
    s.add_argument("--plane", default="unknown")
    s.add_argument("--time-scale", type=_positive, default=1.0)
    return ap


def _load_trace(ns: argparse.Namespace) -> traces.Trace:
    trace = traces.load_file(ns.trace) if ns.trace else traces.builtin(ns.scenario)
    trace = trace.scaled(ns.time_scale)
    return trace.with_players_scale(ns.players_scale) if ns.players_scale != 1.0 else trace


def _make_plane(ns: argparse.Namespace, ap: argparse.ArgumentParser) -> Plane:
    if ns.plane == "sim":
        if not ns.namespace or not ns.deployment:
            ap.error("--plane sim needs --namespace and --deployment")
        from surge_loadgen.sim import SimPlane, make_api_client

        cost = v.CostModel(
            players_per_core=ns.players_per_core,
            base_cpu_millis=ns.cpu_base,
            base_memory_mib=ns.memory_base,
            memory_per_player_mib=ns.memory_per_player,
        )
        return SimPlane(
            make_api_client(ns.kubeconfig),
            ns.namespace,
            ns.deployment,
            container=ns.container,
            cost=cost,
            batcher=PatchBatcher(min_interval=ns.patch_interval),
            targets_dir=ns.prometheus_targets,
            metrics_host=ns.metrics_host,
            metrics_port=ns.metrics_port,
        )
    if bool(ns.servers) == bool(ns.servers_from_k8s):
        ap.error("--plane real needs either --servers host:port[,...] or --servers-from-k8s NS/SELECTOR")
    from surge_loadgen.real import PodDiscovery, RealPlane, parse_k8s_target, parse_servers

    try:
        if ns.servers_from_k8s:
            from surge_loadgen.sim import make_api_client

            namespace, selector = parse_k8s_target(ns.servers_from_k8s)
            discover = PodDiscovery(make_api_client(ns.kubeconfig), namespace, selector)
            return RealPlane([], discover=discover, input_rate=ns.input_rate, max_bots=ns.max_bots)
        servers = parse_servers(ns.servers)
    except ValueError as exc:
        ap.error(str(exc))
    return RealPlane(servers, input_rate=ns.input_rate, max_bots=ns.max_bots)


async def _run(ns: argparse.Namespace, ap: argparse.ArgumentParser) -> RunResult:
    trace = _load_trace(ns)
    plane = _make_plane(ns, ap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"surge-loadgen: {trace.name} on the {plane.name} plane, {trace.duration:.0f}s "
        f"(time scale {trace.time_scale:g}), peak {trace.peak:.0f} players -> {ns.out}",
        flush=True,
    )
    return await run(
        plane,
        trace,
        ns.out,
        step=ns.step,
        progress_every=ns.progress_every,
        stop=stop,
        echo=lambda line: print(line, flush=True),
    )


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    ns = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if ns.command == "scenarios":
        for name in traces.BUILTINS:
            t = traces.builtin(name)
            print(f"{name:14s} {t.duration:5.0f}s peak {t.peak:5.0f}  {t.description}")
        return 0
    if ns.command == "summarize":
        samples = read_csv(ns.timeline)
        summary = summarize(samples, scenario=ns.scenario, plane=ns.plane, time_scale=ns.time_scale)
        write_outputs(RunResult(summary, samples, ns.timeline.parent))
        print(json.dumps(summary, indent=2))
        return 0
    try:
        result = asyncio.run(_run(ns, ap))
    except ValueError as exc:  # a bad trace file or scenario name
        print(f"surge-loadgen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: val for k, val in result.summary.items() if k != "scale_events"}, indent=2))
    print(f"summary:  {result.summary_path}\ntimeline: {result.png_path}\nraw:      {result.timeline_path}")
    return 0
