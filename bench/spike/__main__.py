"""CLI: `python -m bench.spike run|report` (from the repository root; `make bench-spike` wraps `run`).

  python -m bench.spike run [--scenario launch-spike | --trace FILE] [--time-scale 1.0] [--runs 3]
                            [--jitter 10] [--warmup 45] [--contenders all] [--out out/bench-spike]
  python -m bench.spike report      # rewrite the Spike section of bench/RESULTS.md from bench/spike/results

`run` expects the bench cluster to be up: $SURGE_CLUSTER_NAME (default surge-spike) with Prometheus on
$SURGE_PROMETHEUS_PORT (default 19093), as `make bench-spike` starts it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.scale.procstat import machine
from bench.spike import contenders as cs
from bench.spike import overlay, report, runner, stats
from bench.spike.cluster import REPO, Admin, versions
from surge_loadgen import trace as traces
from surge_loadgen.timeline import Sample, read_csv

from surge_testbed.env import read_env

log = logging.getLogger("bench.spike")


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _label(trace: traces.Trace) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", trace.name)
    return f"{name}-x{trace.time_scale:g}"


def _trace_points(meta: dict[str, Any]) -> list[tuple[float, float]]:
    trace = meta["trace"]
    if "points" in trace:
        return [(float(a), float(b)) for a, b in trace["points"]]
    source = str(trace.get("source", ""))
    loaded = traces.builtin(source[8:]) if source.startswith("builtin:") else traces.load_file(source)
    return list(loaded.scaled(float(trace["time_scale"])).points)


def finalize(out: Path, *, publish: bool, results_dir: Path, results_md: Path) -> dict[str, Any]:
    """From out/results.json and the rounds' timelines: per-segment integrals, the representative round,
    the overlay PNG; then (publish) copy results + PNG to results_dir and rewrite the RESULTS.md section."""
    doc: dict[str, Any] = json.loads((out / "results.json").read_text())
    points = _trace_points(doc["meta"])
    timelines: dict[int, dict[str, list[Sample]]] = {}
    for r in doc["rounds"]:
        timelines[r["round"]] = {}
        r["segments"] = {}
        for key, summary in r["summaries"].items():
            samples = read_csv(out / f"round-{r['round']}" / key / "timeline.csv")
            timelines[r["round"]][key] = samples
            end = float(summary["duration_s"]) + (samples[0].t if samples else 0.0)
            r["segments"][key] = stats.segments(samples, points, end)
    finished = report.complete(doc)
    if not finished:
        raise RuntimeError(f"{out}: no round ran to the end of the trace")
    rounds = [r["summaries"] for r in finished]
    index = stats.representative_round(rounds, "unserved_player_seconds")
    rep = finished[index]["round"]
    doc["representative_round"] = rep
    titles = {c["key"]: c["title"] for c in doc["meta"]["contenders"]}
    captions = {
        key: f": unserved {s['unserved_player_seconds']:,.0f} player-s, {s['replica_seconds']:,.0f} replica-s"
        for key, s in rounds[index].items()
    }
    trace = doc["meta"]["trace"]
    overlay.render(
        out / "overlay.png",
        {key: (titles[key], samples) for key, samples in timelines[rep].items()},
        title=f"{trace['name']} at time scale {trace['time_scale']:g}, round {rep} of {len(rounds)} "
        f"(run {doc['run_id']}): all contenders replayed concurrently on one cluster",
        captions=captions,
    )
    png_name = f"{out.name}.png"
    doc["overlay_png"] = png_name
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    log.info("results: %s, overlay: %s", out / "results.json", out / "overlay.png")
    if publish:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / f"{out.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
        shutil.copyfile(out / "overlay.png", results_dir / png_name)
        _write_report(results_dir, results_md)
    return doc


def cmd_run(args: argparse.Namespace) -> int:
    testbed = read_env()
    if testbed.name == "surge" and not args.any_cluster:
        sys.exit(
            "refusing to load the shared cluster 'surge': "
            "set SURGE_CLUSTER_NAME=surge-spike (or --any-cluster)"
        )
    trace = traces.load_file(args.trace) if args.trace else traces.builtin(args.scenario)
    trace = trace.scaled(args.time_scale)
    chosen = cs.select(args.contenders)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    out = Path(args.out) / _label(trace)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    settings = runner.Settings(
        trace=trace,
        contenders=chosen,
        runs=args.runs,
        jitter=args.jitter,
        warmup=args.warmup,
        step=args.step,
        seed=seed,
        out=out,
        metrics_port=args.metrics_port,
        keep_namespaces=args.keep_namespaces,
    )
    admin = Admin(testbed)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": args.command_line,
        "cluster": testbed.name,
        "machine": machine(),
        "versions": versions(admin),
        "hpa_sync_period": os.environ.get("SURGE_HPA_SYNC_PERIOD", "15s"),
        "trace": {
            "name": trace.name,
            "description": trace.description,
            "time_scale": trace.time_scale,
            "duration": trace.duration,
            "peak": trace.peak,
            "source": str(args.trace) if args.trace else f"builtin:{args.scenario}",
            "points": [list(p) for p in trace.points],
        },
        "runs": args.runs,
        "jitter": args.jitter,
        "warmup": args.warmup,
        "step": args.step,
        "seed": seed,
        "contenders": [
            {
                "key": c.key,
                "title": c.title,
                "autoscaler": c.autoscaler,
                "summary": c.summary,
                "manifest": str(c.manifest.relative_to(REPO)),
            }
            for c in chosen
        ],
    }
    log.info(
        "%s at time scale %g: %d round(s) of %.0f s (+ %.0f s warm-up + up to %.0f s offset), "
        "contenders %s -> %s",
        trace.name,
        trace.time_scale,
        args.runs,
        trace.duration,
        args.warmup,
        args.jitter,
        ",".join(c.key for c in chosen),
        out,
    )
    body = runner.run_rounds(settings, testbed, admin, echo=lambda line: print(line, flush=True))
    doc: dict[str, Any] = {"meta": meta, **body}
    if not doc["rounds"]:
        log.error("no round completed")
        return 1
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    finalize(out, publish=args.publish, results_dir=Path(args.results_dir), results_md=Path(args.results_md))
    return 2 if doc.get("interrupted") else 0


def _write_report(results_dir: Path, md: Path) -> None:
    rel = os.path.relpath(results_dir, md.parent)
    report.write_section(md, report.render(report.load(results_dir), rel))
    log.info("wrote the Spike section of %s", md)


def cmd_report(args: argparse.Namespace) -> int:
    _write_report(Path(args.results_dir), Path(args.results_md))
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    results_dir, results_md = Path(args.results_dir), Path(args.results_md)
    finalize(Path(args.dir), publish=args.publish, results_dir=results_dir, results_md=results_md)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The bench cluster of `make bench-spike`, unless told otherwise.
    os.environ.setdefault("SURGE_CLUSTER_NAME", "surge-spike")
    os.environ.setdefault("SURGE_PROMETHEUS_PORT", "19093")
    parser = argparse.ArgumentParser(
        prog="python -m bench.spike",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the rounds on the bench cluster (already up)")
    src = run.add_mutually_exclusive_group()
    src.add_argument("--scenario", default="launch-spike", help=f"built-in: {', '.join(traces.BUILTINS)}")
    src.add_argument("--trace", type=Path, help="any CSV or YAML trace file (seconds, players)")
    run.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        help="1.0 = real time (the honest comparison: the HPA's timing is real time); 0.1 = 10x faster",
    )
    run.add_argument("--runs", type=int, default=3, help="rounds (every contender once per round); default 3")
    run.add_argument(
        "--jitter",
        type=_non_negative,
        default=10.0,
        help="each contender starts its replay after warm-up + U(0, jitter) s; default 10",
    )
    run.add_argument(
        "--warmup",
        type=_non_negative,
        default=45.0,
        help="seconds of the trace's first demand value before the replay (not recorded); default 45",
    )
    run.add_argument("--step", type=_positive, default=1.0, help="load-generator step (s); default 1")
    run.add_argument("--seed", type=int, help="random seed for the offsets (default: random, recorded)")
    run.add_argument("--contenders", default="all", help=f"comma-separated subset of: {', '.join(cs.BY_KEY)}")
    run.add_argument(
        "--out", default=str(REPO / "out" / "bench-spike"), help="outputs (a folder per trace/scale)"
    )
    run.add_argument("--metrics-port", type=int, default=18093, help="the operator's --metrics-port")
    run.add_argument("--keep-namespaces", action="store_true", help="keep each round's namespaces")
    run.add_argument(
        "--no-publish",
        dest="publish",
        action="store_false",
        help="do not copy results to bench/spike/results nor rewrite bench/RESULTS.md",
    )
    run.add_argument("--any-cluster", action="store_true", help="allow the shared cluster 'surge'")
    fin = sub.add_parser(
        "finalize", help="recompute segments, representative round and overlay of a finished run folder"
    )
    fin.add_argument("dir", help="e.g. out/bench-spike/launch-spike-x1 (holds results.json and round-*/)")
    fin.add_argument("--no-publish", dest="publish", action="store_false")
    for p in (run, fin, sub.add_parser("report", help="rewrite the Spike section of bench/RESULTS.md")):
        p.add_argument("--results-dir", default=str(REPO / "bench" / "spike" / "results"))
        p.add_argument("--results-md", default=str(REPO / "bench" / "RESULTS.md"))
    args = parser.parse_args(argv)
    if args.cmd == "run" and args.runs < 1:
        parser.error("--runs must be >= 1")
    args.command_line = "python -m bench.spike " + shlex.join(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    commands = {"run": cmd_run, "finalize": cmd_finalize, "report": cmd_report}
    return int(commands[args.cmd](args))


if __name__ == "__main__":
    sys.exit(main())
