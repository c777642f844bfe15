"""`surge simulate POLICY.yaml --scenario NAME | --trace FILE ...`: arguments and the command body."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from surge_game.vocabulary import DEFAULT_PLAYERS_PER_CORE, CostModel
from surge_loadgen import trace as traces

from surge.api.quantity import quantity_to_float
from surge.api.spec import SpecError
from surge.simulate import output
from surge.simulate.fleet import FleetTiming
from surge.simulate.loop import Contender, SimConfig, SimResult, simulate
from surge.simulate.policy import HPA_DEFAULT_TARGET, HPA_KIND, FleetSpec, hpa_default, load_policy

__all__ = ["add_parser", "run"]

_DEFAULTS = FleetTiming()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Adds `simulate` to the `surge` command's subparsers."""
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="replay a policy on a demand trace offline (same engine, simulated fleet)",
        description="Replays an AutoScalePolicy (or an autoscaling/v2 HPA) on a demand trace through the "
        "operator's own decision engine and a model of the fleet and its metric pipelines. docs/simulate.md",
    )
    p.add_argument("policy", type=Path, help="YAML file with an AutoScalePolicy or HorizontalPodAutoscaler")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenario", choices=traces.BUILTINS, help="a built-in scenario of the load generator")
    src.add_argument("--trace", type=Path, help="a trace file (the load generator's CSV or YAML format)")
    p.add_argument("--time-scale", type=_positive, default=1.0, help="0.2 = five times faster (default 1)")
    p.add_argument("--players-scale", type=_positive, default=1.0, help="multiply every demand value")
    p.add_argument(
        "--hpa", action="store_true", help="also replay HPA's default behaviour on CPU side by side"
    )
    p.add_argument("--hpa-target", type=int, default=HPA_DEFAULT_TARGET, help="the HPA's CPU target, percent")
    p.add_argument(
        "--out", type=Path, default=Path("out/simulate"), help="output folder (default out/simulate)"
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table", help="what to print")
    p.add_argument("--seed", type=int, default=1, help="phases of ticks and scrapes (default 1)")
    p.add_argument("--rounds", type=_count, default=1, help="seeds seed..seed+N-1; the table shows medians")
    p.add_argument(
        "--start",
        type=_instant,
        default=0.0,
        help="when the warm-up starts, e.g. 2026-12-08T18:00:00Z (for time-of-day rules); default: the epoch",
    )
    fleet = p.add_argument_group("fleet (default: a Deployment in the policy file, else 2 x 500m)")
    fleet.add_argument("--replicas", type=_count, help="initial replicas")
    fleet.add_argument("--cpu-request", help="CPU request per pod, e.g. 500m (capacity comes from it)")
    fleet.add_argument("--players-per-core", type=_positive, default=DEFAULT_PLAYERS_PER_CORE)
    timing = p.add_argument_group("timing (defaults: the test bed's, docs/simulate.md)")
    timing.add_argument("--pod-start-delay", type=_non_negative, default=_DEFAULTS.pod_start_delay)
    timing.add_argument("--scrape-interval", type=_positive, default=_DEFAULTS.scrape_interval)
    timing.add_argument("--metrics-resolution", type=_positive, default=_DEFAULTS.metrics_resolution)
    timing.add_argument("--hpa-sync-period", type=_positive, default=_DEFAULTS.hpa_sync_period)
    timing.add_argument(
        "--warmup", type=_non_negative, default=45.0, help="seconds at the first demand first"
    )
    return p


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _instant(text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def run(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    """The command; 0 on success, 2 on bad input (the message names what is wrong)."""
    try:
        return _run(args, echo)
    except (SpecError, ValueError, OSError) as exc:
        print(f"surge simulate: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, echo: Callable[[str], None]) -> int:
    timing = FleetTiming(
        pod_start_delay=args.pod_start_delay,
        scrape_interval=args.scrape_interval,
        metrics_resolution=args.metrics_resolution,
        hpa_sync_period=args.hpa_sync_period,
    )
    loaded = load_policy(args.policy, timing.hpa_sync_period)
    trace = traces.builtin(args.scenario) if args.scenario else traces.load_file(args.trace)
    trace = trace.scaled(args.time_scale)
    if args.players_scale != 1.0:
        trace = trace.with_players_scale(args.players_scale)
    base = loaded.fleet or FleetSpec()
    fleet = FleetSpec(
        replicas=args.replicas if args.replicas is not None else base.replicas,
        container=base.container,
        cpu_request_m=quantity_to_float(args.cpu_request) * 1000.0
        if args.cpu_request
        else base.cpu_request_m,
        memory_request=base.memory_request,
    )
    is_hpa = loaded.kind == HPA_KIND
    contenders = [Contender(loaded.name, loaded.name, loaded.spec, 0.0 if is_hpa else 0.05)]
    if args.hpa:
        spec = hpa_default(loaded.spec, timing.hpa_sync_period, args.hpa_target)
        contenders.append(Contender("hpa-default", f"HPA default (CPU {args.hpa_target}%)", spec, 0.0))
    cost = CostModel(players_per_core=args.players_per_core)
    results: dict[str, list[SimResult]] = {}
    for contender in contenders:
        results[contender.key] = [
            simulate(
                contender,
                trace,
                fleet,
                SimConfig(timing=timing, warmup=args.warmup, seed=seed, start=args.start),
                cost,
            )
            for seed in range(args.seed, args.seed + args.rounds)
        ]
    extra = {
        "scenario": trace.name,
        "time_scale": trace.time_scale,
        "fleet": {
            "replicas": fleet.replicas,
            "cpu_request_m": fleet.cpu_request_m,
            "players_per_core": cost.players_per_core,
        },
    }
    doc = output.report(results, policy=str(args.policy), timing=timing, extra=extra)
    notes: list[str] = []
    written = output.write(args.out, doc, results, notes.append)
    if args.output == "json":
        echo(json.dumps(doc, indent=2))
        for note in notes:
            print(note, file=sys.stderr)
        return 0
    echo(
        f"{trace.name} (time scale {trace.time_scale:g}, {trace.duration:g} s) on {fleet.replicas} x "
        f"{fleet.cpu_request_m:g}m pods:"
    )
    echo(output.table(doc))
    for note in notes:
        echo(note)
    echo("wrote " + ", ".join(str(p) for p in written))
    return 0
