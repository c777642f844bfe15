"""`surge simulate` benchmarks: its speed, and its calibration against the real-cluster spike benchmark.

    python -m bench.simulate speed       # wall time of an hour-long trace (diurnal stretched to 3,600 s)
    python -m bench.simulate calibrate   # launch-spike, Surge game and HPA default vs bench/spike's medians

The calibration replays the bench's exact manifests (manifests/bench/spike/: fleet, surge-game, hpa-default)
at the real bench's time scale with the fleet model's default timing (the test bed's measured constants), over
many seeds (tick and scrape phases), and prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from surge_loadgen.trace import builtin

from surge.simulate.fleet import FleetTiming
from surge.simulate.loop import Contender, SimConfig, simulate
from surge.simulate.policy import FleetSpec, fleet_spec, load_policy

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests" / "bench" / "spike"
RESULTS = REPO / "bench" / "spike" / "results"
METRICS = (("unserved_player_seconds", "unserved player-seconds"), ("replica_seconds", "replica-seconds"))
TOLERANCE = 0.15


def speed(rounds: int) -> dict[str, Any]:
    """Seconds of wall time per hour-long replay, Surge game policy and HPA default."""
    base = builtin("diurnal")
    trace = base.scaled(3600.0 / base.duration)
    out: dict[str, Any] = {"trace": f"diurnal stretched to {trace.duration:.0f} s", "rounds": rounds}
    for key in ("surge-game", "hpa-default"):
        policy = load_policy(MANIFESTS / f"{key}.yaml")
        contender = Contender(key, key, policy.spec, 0.0 if key == "hpa-default" else 0.05)
        walls = []
        for seed in range(1, rounds + 1):
            start = time.perf_counter()
            simulate(contender, trace, FleetSpec(), SimConfig(seed=seed))
            walls.append(time.perf_counter() - start)
        out[key] = {"median_s": round(statistics.median(walls), 3), "max_s": round(max(walls), 3)}
    return out


def real_medians(path: Path) -> dict[str, dict[str, Any]]:
    """Per contender and metric: median, min, max over the real bench's complete rounds."""
    doc = json.loads(path.read_text())
    rounds = [r for r in doc["rounds"] if not r.get("interrupted")]
    out: dict[str, dict[str, Any]] = {}
    for key in ("surge-game", "hpa-default"):
        out[key] = {}
        for metric, _ in METRICS:
            values = [float(r["summaries"][key][metric]) for r in rounds]
            out[key][metric] = {"median": statistics.median(values), "values": values}
    return out


def calibrate(seeds: int, time_scale: float) -> dict[str, Any]:
    trace = builtin("launch-spike").scaled(time_scale)
    fleet = bench_fleet()
    timing = FleetTiming()
    sim: dict[str, dict[str, list[float]]] = {}
    for key, title in (("surge-game", "Surge game"), ("hpa-default", "HPA default")):
        policy = load_policy(MANIFESTS / f"{key}.yaml", timing.hpa_sync_period)
        contender = Contender(
            key, title, policy.spec, 0.0 if policy.kind == "HorizontalPodAutoscaler" else 0.05
        )
        runs = [
            simulate(contender, trace, fleet, SimConfig(timing=timing, seed=s)) for s in range(1, seeds + 1)
        ]
        sim[key] = {m: [float(r.summary[m]) for r in runs] for m, _ in METRICS}
    suffix = "x1" if time_scale == 1.0 else f"x{time_scale:g}"
    real = real_medians(RESULTS / f"launch-spike-{suffix}.json")
    return {"seeds": seeds, "time_scale": time_scale, "sim": sim, "real": real}


def bench_fleet() -> FleetSpec:
    """The bench's fleet (2 x 500m) from manifests/bench/spike/fleet.yaml."""
    return fleet_spec(yaml.safe_load((MANIFESTS / "fleet.yaml").read_text()))


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"| contender | metric | sim median ({doc['seeds']} seeds) | sim p10..p90 | real median [rounds] "
        "| sim / real | within 15%? |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for key, title in (("surge-game", "Surge game"), ("hpa-default", "HPA default")):
        for metric, label in METRICS:
            values = doc["sim"][key][metric]
            sim_median = statistics.median(values)
            real = doc["real"][key][metric]
            ratio = sim_median / real["median"]
            rounds = ", ".join(f"{v:,.0f}" for v in real["values"])
            band = f"{_quantile(values, 0.1):,.0f}..{_quantile(values, 0.9):,.0f}"
            met = "yes" if abs(ratio - 1) <= TOLERANCE else "**no**"
            lines.append(
                f"| {title} | {label} | {sim_median:,.0f} | {band} | {real['median']:,.0f} [{rounds}]"
                f" | {ratio:.2f} | {met} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("speed", help="wall time of an hour-long trace")
    sp.add_argument("--rounds", type=int, default=3)
    cal = sub.add_parser("calibrate", help="sim vs real medians on launch-spike")
    cal.add_argument("--seeds", type=int, default=100)
    cal.add_argument("--time-scale", type=float, default=1.0)
    cal.add_argument("--json", action="store_true", help="print the raw numbers as JSON too")
    args = parser.parse_args(argv)
    if args.command == "speed":
        print(json.dumps(speed(args.rounds), indent=2))
        return 0
    doc = calibrate(args.seeds, args.time_scale)
    if args.json:
        print(json.dumps(doc, indent=2))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
