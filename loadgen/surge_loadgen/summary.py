"""The run summary: a pure function of the timeline (no clock, no I/O). Definitions: docs/metrics.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from surge_loadgen.timeline import Sample

ONSET_FACTOR = 1.5
"""The surge starts at the first sample whose demand is >= this multiple of the first sample's demand."""
COVER_FRACTION = 0.9
"""'Capacity covers demand' means capacity >= this fraction of demand."""
PEAK_FRACTION = 0.95
"""The peak lasts until the last sample whose demand is at least this fraction of the peak demand."""


@dataclass(frozen=True)
class ScaleEvent:
    t: float
    kind: str  # "horizontal" | "vertical"
    before: int
    after: int

    @property
    def direction(self) -> int:
        return 1 if self.after > self.before else -1


def scale_events(samples: Sequence[Sample]) -> list[ScaleEvent]:
    """Every change of replicas_desired (horizontal) and of the dominant CPU request (vertical, both > 0)."""
    events: list[ScaleEvent] = []
    for prev, cur in pairwise(samples):
        if cur.replicas_desired != prev.replicas_desired:
            events.append(ScaleEvent(cur.t, "horizontal", prev.replicas_desired, cur.replicas_desired))
        if cur.cpu_request_m != prev.cpu_request_m and cur.cpu_request_m > 0 and prev.cpu_request_m > 0:
            events.append(ScaleEvent(cur.t, "vertical", prev.cpu_request_m, cur.cpu_request_m))
    return events


def reversals(events: Sequence[ScaleEvent]) -> int:
    """How often consecutive events (of one kind) change direction: up, up, down, up -> 2."""
    count = 0
    for a, b in pairwise(events):
        if a.direction != b.direction:
            count += 1
    return count


def _durations(samples: Sequence[Sample], end: float | None) -> list[float]:
    """Sample i holds over [t_i, t_{i+1}); the last one over [t_last, end) (zero length without `end`)."""
    ts = [s.t for s in samples]
    last_end = ts[-1] if end is None else max(end, ts[-1])
    return [b - a for a, b in zip(ts, [*ts[1:], last_end], strict=True)]


def surge_onset(samples: Sequence[Sample], factor: float = ONSET_FACTOR) -> float | None:
    baseline = max(samples[0].demand, 1)
    for s in samples:
        if s.demand >= factor * baseline:
            return s.t
    return None


def time_to_cover(
    samples: Sequence[Sample], onset: float | None, fraction: float = COVER_FRACTION
) -> tuple[float | None, float | None]:
    """(seconds from onset until capacity covers `fraction` of demand for good, peak end).

    "For good" = at every sample from that moment until the end of the peak (the last sample whose demand is
    at least PEAK_FRACTION of the peak demand). None if there is no surge or capacity is short at the peak's
    end.
    """
    if onset is None:
        return None, None
    window = [s for s in samples if s.t >= onset]
    peak = max(s.demand for s in window)
    peak_end_index = max(i for i, s in enumerate(window) if s.demand >= PEAK_FRACTION * peak)
    covered_from: float | None = None
    for s in window[: peak_end_index + 1]:
        if s.capacity >= fraction * s.demand:
            if covered_from is None:
                covered_from = s.t
        else:
            covered_from = None
    peak_end = window[peak_end_index].t
    return (None if covered_from is None else covered_from - onset), peak_end


def summarize(
    samples: Sequence[Sample],
    *,
    scenario: str,
    plane: str,
    time_scale: float,
    end: float | None = None,
) -> dict[str, Any]:
    """The summary.json content. `end` is the run's end time (the last sample holds until then)."""
    if not samples:
        raise ValueError("cannot summarize an empty timeline")
    dts = _durations(samples, end)
    duration = sum(dts)
    demand_ps = sum(s.demand * dt for s, dt in zip(samples, dts, strict=True))
    served_ps = sum(s.served * dt for s, dt in zip(samples, dts, strict=True))
    unserved_ps = sum(s.unserved * dt for s, dt in zip(samples, dts, strict=True))
    peak_unserved = max(samples, key=lambda s: (s.unserved, -s.t))
    onset = surge_onset(samples)
    t90, peak_end = time_to_cover(samples, onset)
    events = scale_events(samples)
    horizontal = [e for e in events if e.kind == "horizontal"]
    vertical = [e for e in events if e.kind == "vertical"]
    last = samples[-1]

    def r(x: float | None, nd: int = 1) -> float | None:
        return None if x is None else round(x, nd)

    return {
        "scenario": scenario,
        "plane": plane,
        "time_scale": time_scale,
        "duration_s": r(duration),
        "samples": len(samples),
        "demand_player_seconds": r(demand_ps),
        "served_player_seconds": r(served_ps),
        "unserved_player_seconds": r(unserved_ps),
        "unserved_fraction": r(unserved_ps / demand_ps if demand_ps else 0.0, 4),
        "peak_demand": max(s.demand for s in samples),
        "peak_unserved": peak_unserved.unserved,
        "peak_unserved_t": r(peak_unserved.t),
        "surge_onset_s": r(onset),
        "peak_end_s": r(peak_end),
        "time_to_cover_90_s": r(t90),
        "replica_seconds": r(sum(s.replicas_ready * dt for s, dt in zip(samples, dts, strict=True))),
        "cpu_request_core_seconds": r(
            sum(s.replicas_ready * s.cpu_request_m / 1000 * dt for s, dt in zip(samples, dts, strict=True))
        ),
        "replicas_min": min(s.replicas_desired for s in samples),
        "replicas_max": max(s.replicas_desired for s in samples),
        "replicas_final": last.replicas_desired,
        "cpu_request_m_min": min((s.cpu_request_m for s in samples if s.cpu_request_m), default=0),
        "cpu_request_m_max": max((s.cpu_request_m for s in samples), default=0),
        "scale_actions": len(events),
        "horizontal_scale_actions": len(horizontal),
        "scale_ups": sum(1 for e in horizontal if e.direction > 0),
        "scale_downs": sum(1 for e in horizontal if e.direction < 0),
        "vertical_scale_actions": len(vertical),
        "direction_reversals": reversals(horizontal) + reversals(vertical),
        "horizontal_reversals": reversals(horizontal),
        "vertical_reversals": reversals(vertical),
        "rejected_joins": last.rejected_total,
        "dropped_players": last.dropped_total,
        "api_writes": last.api_writes_total,
        "api_writes_per_second": r(last.api_writes_total / duration if duration else 0.0, 2),
        "scale_events": [
            {"t": round(e.t, 1), "kind": e.kind, "from": e.before, "to": e.after} for e in events
        ],
    }
