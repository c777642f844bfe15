"""What a simulation leaves behind: summary.json, one timeline CSV per contender, PNGs, a short table.

The summary of each round is the load generator's own (`surge_loadgen.summary.summarize`, definitions in
docs/metrics.md), so a simulated number and a real-cluster number mean the same thing.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from surge_loadgen.timeline import write_csv

from surge.simulate.fleet import FleetTiming
from surge.simulate.loop import SimResult

__all__ = ["KEY_METRICS", "median_round", "report", "table", "write"]

# (summary key, label, digits) of the table and of the medians over rounds.
KEY_METRICS: tuple[tuple[str, str, int], ...] = (
    ("unserved_player_seconds", "unserved player-seconds", 0),
    ("unserved_fraction", "unserved fraction of demand", 4),
    ("peak_unserved", "peak unserved players", 0),
    ("time_to_cover_90_s", "time to cover 90% (s)", 0),
    ("replica_seconds", "replica-seconds", 0),
    ("oracle_replica_seconds", "oracle replica-seconds", 0),
    ("replica_seconds_vs_oracle", "replica-seconds / oracle", 2),
    ("replicas_max", "replicas max", 0),
    ("replicas_final", "replicas at the end", 0),
    ("scale_actions", "scale actions", 0),
    ("dropped_players", "dropped players", 0),
)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_round(rounds: Sequence[SimResult]) -> SimResult:
    """The round whose unserved player-seconds is the median (lower median on even counts)."""
    ordered = sorted(rounds, key=lambda r: (r.summary["unserved_player_seconds"], r.summary["seed"]))
    return ordered[(len(ordered) - 1) // 2]


def report(
    results: Mapping[str, Sequence[SimResult]], *, policy: str, timing: FleetTiming, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """summary.json: per contender the median round's full summary, and medians over all rounds."""
    contenders: dict[str, Any] = {}
    for key, rounds in results.items():
        rep = median_round(rounds)
        contenders[key] = {
            "title": rep.contender.title,
            "summary": rep.summary,
            "rounds": len(rounds),
            "seeds": [r.summary["seed"] for r in rounds],
            "medians": {k: _median([r.summary.get(k) for r in rounds]) for k, _, _ in KEY_METRICS},
            "per_round": {k: [r.summary.get(k) for r in rounds] for k, _, _ in KEY_METRICS},
        }
    return {"policy": policy, "fleet_model": asdict(timing), **extra, "contenders": contenders}


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "never"
    if digits == 4:
        return f"{float(value):.2%}"
    return f"{float(value):,.{digits}f}"


def table(doc: Mapping[str, Any]) -> str:
    """A fixed-width table: one row per key metric, one column per contender (medians over rounds)."""
    contenders = doc["contenders"]
    titles = [str(c["title"]) for c in contenders.values()]
    rows = [["metric", *titles]]
    for key, label, digits in KEY_METRICS:
        rows.append([label, *(_cell(c["medians"][key], digits) for c in contenders.values())])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    rounds = {c["rounds"] for c in contenders.values()}
    if rounds != {1}:
        lines.append(
            f"(medians over {', '.join(str(r) for r in sorted(rounds))} rounds: tick and scrape phases)"
        )
    return "\n".join(lines)


def png_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write(
    out: Path, doc: Mapping[str, Any], results: Mapping[str, Sequence[SimResult]], echo: Callable[[str], None]
) -> list[Path]:
    """summary.json, timeline-<key>.csv and (with matplotlib) timeline-<key>.png of each median round."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "summary.json"]
    written[0].write_text(json.dumps(doc, indent=2) + "\n")
    reps = {key: median_round(rounds) for key, rounds in results.items()}
    for key, rep in reps.items():
        path = out / f"timeline-{key}.csv"
        write_csv(path, rep.samples)
        written.append(path)
    if png_available():
        from surge_loadgen import plot  # matplotlib only when it is there (not in the operator image)

        for key, rep in reps.items():
            path = out / f"timeline-{key}.png"
            plot.render(path, rep.samples, rep.summary)
            written.append(path)
    else:
        echo("no PNG: matplotlib is not installed (pip install matplotlib, or plot the timeline CSVs)")
    return written
