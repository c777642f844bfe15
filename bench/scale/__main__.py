"""CLI: `python -m bench.scale run|report` (run from the repository root)."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from bench.scale import cluster, procstat, report, runner

from surge_testbed.env import read_env

REPO = cluster.REPO
log = logging.getLogger("bench.scale")


# The bench's own cluster unless the environment names another (make bench-scale sets the same).
BENCH_CLUSTER = {"SURGE_CLUSTER_NAME": "surge-bench", "SURGE_PROMETHEUS_PORT": "19091"}


def _versions(admin: cluster.Admin) -> dict[str, str]:
    pinned = dict(
        line.split("=", 1)
        for line in (REPO / "testbed/versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {
        "kubernetes": cluster.server_version(admin),
        "etcd": pinned.get("ETCD_VERSION", "?").strip('"'),
        "kwok": pinned.get("KWOK_VERSION", "?").strip('"'),
        "metrics_server": pinned.get("METRICS_SERVER_VERSION", "?").strip('"'),
        "surge": version("surge"),
        "kopf": version("kopf"),
        "kubernetes_client": version("kubernetes"),
    }


def _export_operator(rev: str, work: Path) -> tuple[str, Path | None]:
    """Exports operator/ at `rev` (git archive) so others' uncommitted edits cannot change the run.

    Returns (description of what is measured, path to put on PYTHONPATH or None for the work tree).
    """
    if rev == "worktree":
        head = _git("rev-parse", "--short", "HEAD")
        dirty = " + uncommitted changes" if _git("status", "--porcelain", "--", "operator") else ""
        return f"work tree at {head}{dirty}", None
    sha = _git("rev-parse", "--short", rev)
    dest = work / f"operator-{sha}"
    if not (dest / "operator/surge/__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha, "operator"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return f"commit {sha}", dest / "operator"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _background() -> str:
    """Other busy processes on the machine (e.g. another test cluster), for the record."""
    try:
        busy, total = procstat.machine_busy()
        time.sleep(5)
        busy2, total2 = procstat.machine_busy()
        return f"{100 * (busy2 - busy) / (total2 - total):.0f}% of all CPUs busy in the 5 s before the run"
    except OSError:
        return "n/a"


def cmd_run(args: argparse.Namespace) -> int:
    env = read_env(defaults=BENCH_CLUSTER)
    if env.name == "surge" and not args.any_cluster:
        sys.exit(
            "refusing to load the shared cluster 'surge': "
            "set SURGE_CLUSTER_NAME=surge-bench (or pass --any-cluster)"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    measured, operator_src = _export_operator(args.operator_rev, Path(args.work).resolve())
    settings = runner.Settings(
        operator_src=operator_src,
        prometheus_url=env.prometheus_url,
        cluster_name=env.name,
        work=Path(args.work),
        window=args.window,
        settle=args.settle,
        interval=args.interval,
        metrics_port=args.metrics_port,
        stats_port=args.stats_port,
        plain=args.plain,
        profile=args.profile,
        setup_timeout=args.setup_timeout,
        keep=args.keep,
        clear_status=args.clear_status,
        operator_env=tuple((k, v) for k, _, v in (kv.partition("=") for kv in args.operator_env)),
    )
    admin = cluster.Admin(env)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": args.command_line,
        "machine": procstat.machine(),
        "versions": _versions(admin),
        "background": _background(),
        "interval": args.interval,
        "window": args.window,
        "settle": args.settle,
        "operator": measured,
    }
    operator_kubeconfig = cluster.operator_kubeconfig(admin, settings.work / "operator.kubeconfig", args.rbac)
    if not args.keep:  # leftovers would load the cluster while the small points are measured
        for namespace in cluster.bench_namespaces(admin):
            log.info("deleting leftover namespace %s", namespace)
            cluster.delete_namespace(admin, namespace)
    for old in out.glob("*-*.json"):
        old.unlink()
    (out / "run.json").write_text(json.dumps(meta, indent=2) + "\n")
    for variant in args.variants.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            point = runner.run_point(settings, admin, operator_kubeconfig, variant, n)
            (out / f"{variant}-{n:05d}.json").write_text(json.dumps(point, indent=2) + "\n")
            # partial results survive a later failure
            _write_report(out, Path(args.results_md), None, Path(args.whatif))
    operator_kubeconfig.unlink(missing_ok=True)  # a 24 h token: do not leave it around
    return 0


def _write_report(results: Path, md: Path, work: Path | None = None, whatif: Path | None = None) -> None:
    meta, points = report.load(results)
    whatifs = report.load_whatifs(whatif) if whatif and whatif.is_dir() else []
    for point in points:  # re-summarize kept py-spy output (the categories may have been refined)
        raw = (work or Path()) / f"profile-{point['variant']}-{point['policies']}.collapsed.txt"
        if work is not None and raw.exists():
            point["profile"] = runner.summarize_profile(raw)
            (results / f"{point['variant']}-{point['policies']:05d}.json").write_text(
                json.dumps(point, indent=2) + "\n"
            )
    report.write_section(md, report.render(meta, points, whatifs))
    log.info("wrote %s", md)


def cmd_report(args: argparse.Namespace) -> int:
    _write_report(Path(args.out), Path(args.results_md), Path(args.work), Path(args.whatif))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the benchmark on the bench cluster (already up)")
    run.add_argument("--sizes", default="10,100,1000", help="comma-separated policy counts")
    run.add_argument("--variants", default="cpu", help="cpu and/or prometheus, comma-separated")
    run.add_argument("--window", type=float, default=180.0, help="measured seconds per point")
    run.add_argument("--settle", type=float, default=45.0, help="seconds after all policies have a status")
    run.add_argument("--interval", default="15s", help="spec.interval of every policy")
    run.add_argument("--plain", action="store_true", help="run .venv/bin/surge as is (no client-side counts)")
    run.add_argument("--profile", type=float, default=0.0, help="py-spy seconds after each window (0 = off)")
    run.add_argument("--rbac", default="manager-role", help="ClusterRole for the operator's ServiceAccount")
    run.add_argument("--metrics-port", type=int, default=18190, help="operator --metrics-port")
    run.add_argument("--stats-port", type=int, default=18191, help="instrumentation JSON port")
    run.add_argument("--setup-timeout", type=float, default=900.0)
    run.add_argument(
        "--operator-rev",
        default="HEAD",
        help="git revision of operator/ to measure (exported with git archive), or 'worktree'",
    )
    run.add_argument("--keep", action="store_true", help="keep (and reuse) each point's workloads")
    run.add_argument(
        "--clear-status", action="store_true", help="with --keep: empty the policies' status (fresh start)"
    )
    run.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="what-if: extra operator environment (e.g. MALLOC_ARENA_MAX=2, SURGE_BENCH_TRACEMALLOC=1)",
    )
    run.add_argument("--any-cluster", action="store_true", help="allow a cluster other than surge-bench")
    for p in (run, sub.add_parser("report", help="rewrite the RESULTS.md section from the JSON results")):
        p.add_argument("--out", default=str(REPO / "bench/scale/results"))
        p.add_argument("--results-md", default=str(REPO / "bench/RESULTS.md"))
        p.add_argument("--work", default=str(REPO / "out/bench-scale"), help="logs, kubeconfig, profiles")
        p.add_argument("--whatif", default=str(REPO / "bench/scale/whatif"), help="what-if results (report)")
    args = parser.parse_args(argv)
    args.command_line = "python -m bench.scale " + shlex.join(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    return int(cmd_run(args) if args.cmd == "run" else cmd_report(args))


if __name__ == "__main__":
    sys.exit(main())
