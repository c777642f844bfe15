"""Pure aggregation of per-round summaries: medians, spread, paired ratios, the representative round."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from surge_loadgen.timeline import Sample

# Summary keys that are not numbers to aggregate (or are bookkeeping).
SKIP = frozenset(
    {
        "scenario",
        "plane",
        "time_scale",
        "samples",
        "scale_events",
        "interrupted",
        "peak_unserved_t",
        "surge_onset_s",
        "peak_end_s",
        "peak_demand",
        "demand_player_seconds",
        "cpu_request_m_min",
        "cpu_request_m_max",
        "vertical_scale_actions",
        "vertical_reversals",
        "horizontal_scale_actions",  # = scale_actions without vertical scaling
        "horizontal_reversals",  # = direction_reversals without vertical scaling
        "api_writes",  # shown per second
        "lead_in_s",  # = warm-up + start offset
    }
)
# A null time_to_cover_90_s means capacity never covered 90% of demand for good before the peak ended.
NEVER = math.inf


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 0, suffix: str = "") -> str:
        def f(x: float) -> str:
            if math.isinf(x):
                return "never"
            return f"{x:,.{digits}f}{suffix}"

        if self.n <= 1 or self.low == self.high:
            return f(self.median)
        return f"{f(self.median)} [{f(self.low)}..{f(self.high)}]"


def value(summary: Mapping[str, Any], key: str) -> float | None:
    raw = summary.get(key)
    if raw is None:
        return NEVER if key == "time_to_cover_90_s" and key in summary else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    # statistics.median handles inf fine as long as both middle values are not +/-inf of opposite signs.
    mid = statistics.median(ordered)
    return Spread(mid, ordered[0], ordered[-1], len(ordered))


def metric_keys(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Numeric summary keys in first-seen order."""
    keys: list[str] = []
    for s in summaries:
        for key in s:
            if key not in SKIP and key not in keys and value(s, key) is not None:
                keys.append(key)
    return keys


def aggregate(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Spread]]:
    """contender -> metric -> Spread over that contender's rounds."""
    out: dict[str, dict[str, Spread]] = {}
    for contender, summaries in runs.items():
        keys = metric_keys(summaries)
        out[contender] = {}
        for key in keys:
            vals = [v for s in summaries if (v := value(s, key)) is not None]
            if vals:
                out[contender][key] = spread(vals)
    return out


def ratio(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else math.inf
    return a / b


def paired_ratios(
    rounds: Sequence[Mapping[str, Mapping[str, Any]]], num: str, den: str, key: str
) -> list[float]:
    """Per round (where both ran): num's key / den's key. Rounds are paired: same time, same cluster."""
    out = []
    for r in rounds:
        if num in r and den in r:
            a, b = value(r[num], key), value(r[den], key)
            if a is not None and b is not None:
                out.append(ratio(a, b))
    return out


def representative_round(rounds: Sequence[Mapping[str, Mapping[str, Any]]], key: str) -> int:
    """The round closest to every contender's median of `key` (sum of |log ratio to the median|)."""
    if not rounds:
        raise ValueError("no rounds")
    contenders = {c for r in rounds for c in r}
    medians: dict[str, float] = {}
    for c in contenders:
        vals = [v for r in rounds if c in r and (v := value(r[c], key)) is not None]
        if vals:
            medians[c] = statistics.median(vals)

    def distance(r: Mapping[str, Mapping[str, Any]]) -> float:
        total = 0.0
        for c, med in medians.items():
            v = value(r[c], key) if c in r else None
            if v is None:
                continue
            total += abs(math.log((v + 1.0) / (med + 1.0)))
        return total

    return min(range(len(rounds)), key=lambda i: distance(rounds[i]))


def segments(
    samples: Sequence[Sample], points: Sequence[tuple[float, float]], end: float
) -> list[dict[str, float]]:
    """Integrals per trace segment (between consecutive trace points, in run seconds).

    Sample i holds over [t_i, t_{i+1}) (the last one until `end`), as in the run summary; the part of each
    holding interval inside a segment is counted there.
    """
    ts = [s.t for s in samples]
    ends = [*ts[1:], max(end, ts[-1])] if samples else []
    out = []
    for (a, da), (b, db) in pairwise(points):
        acc = {"unserved": 0.0, "replicas": 0.0, "capacity": 0.0, "demand": 0.0}
        for s, lo, hi in zip(samples, ts, ends, strict=True):
            dt = min(hi, b) - max(lo, a)
            if dt <= 0:
                continue
            acc["unserved"] += s.unserved * dt
            acc["replicas"] += s.replicas_ready * dt
            acc["capacity"] += s.capacity * dt
            acc["demand"] += s.demand * dt
        out.append(
            {
                "from_s": a,
                "to_s": b,
                "demand_from": da,
                "demand_to": db,
                "unserved_player_seconds": round(acc["unserved"], 1),
                "replica_seconds": round(acc["replicas"], 1),
                "capacity_over_demand": round(acc["capacity"] / acc["demand"], 3) if acc["demand"] else 0.0,
            }
        )
    return out
