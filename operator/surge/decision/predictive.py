"""Predictive scaling: the recent demand slope, projected ``lookahead`` ahead of the latest demand.

Demand is measured in replicas (the reactive, unclamped max over metric proposals), so one
predictor works for every metric type. It only ever *adds* capacity: the result is
``max(reactive, predicted)``, and a falling or flat trend predicts nothing.

How the prediction is made:

- *Slope from the recent points only*: an ordinary least-squares line over the points of the last
  ``lookahead`` seconds (if fewer than ``MIN_POINTS`` lie in that span, the newest ``MIN_POINTS``
  points within ``history``). A fit over the whole ``history`` lags a ramp that starts after a flat
  baseline (the flat points pull the line down, so it projects less than the reactive count while
  demand is rising) and keeps projecting growth long after a ramp ends (the window is still dominated
  by the ramp). Measured on a launch spike: nothing added during the ramp, then 21 -> 27 -> 19
  predicted for ~100 s while demand was flat at 18.
  A sliding window was chosen over an age-weighted fit (half-life = ``lookahead``) because it forgets
  completely: once the window lies on a plateau the slope is exactly 0, whereas exponential weights
  still give the ramp 25% weight two half-lives after the knee. It also never extrapolates further
  (``lookahead``) than the span the slope was measured over, has no extra constant, and its reason
  ("over N points") is easy to check by hand.
- *Projected from the latest demand*, not from the regression line: ``latest + slope * lookahead``
  (``latest`` is the newest point; the plan records the reactive count every tick, so normally it is
  ``reactive``). The line's own value lags the latest point on a ramp by ``slope * span / 2``.
- *Stop at a knee*: when the newest ``MIN_POINTS`` points are not rising (the newest is not above the
  one ``MIN_POINTS - 1`` before it), demand has flattened or turned, and nothing is added, whatever
  the slope of the rest of the window says.

To stay robust against a single spike it needs ``MIN_POINTS`` points, and it never more than doubles
the reactive count. The module is pure: time is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_GROWTH_FACTOR", "MIN_POINTS", "PredictiveState", "linear_trend", "predict_replicas"]

MIN_POINTS = 3
MAX_GROWTH_FACTOR = 2.0
MAX_STORED_POINTS = 720  # 30 min of 2.5s ticks; bounds the status/checkpoint size


@dataclass(frozen=True, slots=True)
class PredictiveState:
    points: tuple[tuple[float, float], ...] = ()  # (time, demand in replicas), oldest first

    def record(self, now: float, demand: float, history: float) -> PredictiveState:
        """Append a point and drop those older than ``history`` seconds (or beyond the size cap)."""
        cutoff = now - history
        kept = tuple(p for p in self.points if cutoff < p[0] < now)  # also drops a re-recorded tick
        return PredictiveState((*kept, (now, float(demand)))[-MAX_STORED_POINTS:])

    def to_dict(self) -> dict[str, Any]:
        return {"points": [[t, v] for t, v in self.points]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictiveState:
        try:
            return cls(tuple((float(t), float(v)) for t, v in data.get("points", ())))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid predictive state: {exc}") from exc


def linear_trend(points: tuple[tuple[float, float], ...]) -> tuple[float, float, float] | None:
    """Least squares fit: (slope per second, mean time, mean value), or None if under-determined."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    # Centered sums keep precision with epoch-sized timestamps.
    sxx = sum((t - mean_t) ** 2 for t, _ in points)
    if sxx <= 0:
        return None
    sxy = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return sxy / sxx, mean_t, mean_v


def _recent_points(
    points: tuple[tuple[float, float], ...], now: float, lookahead: float
) -> tuple[tuple[float, float], ...]:
    """The points of the last ``lookahead`` seconds, or the newest ``MIN_POINTS`` if that is fewer."""
    recent = tuple(p for p in points if p[0] > now - lookahead)
    return recent if len(recent) >= MIN_POINTS else points[-MIN_POINTS:]


def predict_replicas(
    state: PredictiveState, now: float, lookahead: float, history: float, reactive: int
) -> tuple[int, str] | None:
    """Replicas the recent trend needs at ``now + lookahead``, when that is more than ``reactive``.

    Returns (replicas, explanation) or None when the prediction adds nothing.
    """
    points = tuple(p for p in state.points if now - history < p[0] <= now)
    if len(points) < MIN_POINTS:
        return None
    if points[-1][1] <= points[-MIN_POINTS][1]:
        return None  # the newest points are flat or falling: a knee, whatever the older ones say
    window = _recent_points(points, now, lookahead)
    fit = linear_trend(window)
    if fit is None:
        return None
    slope = fit[0]
    if slope <= 0:
        return None
    latest_t, latest_v = points[-1]
    projected = latest_v + slope * (now + lookahead - latest_t)
    cap = MAX_GROWTH_FACTOR * max(reactive, 1)
    predicted = math.ceil(min(projected, cap) - 1e-9)
    if predicted <= reactive:
        return None
    why = (
        f"predictive: demand rising {slope * 60:.2f} replicas/min over the last {len(window)} points, "
        f"{predicted} needed in {lookahead:g}s"
    )
    return predicted, why
