"""Predictive scaling: a least-squares linear trend over recent demand, projected ``lookahead`` ahead.

Demand is measured in replicas (the reactive, unclamped max over metric proposals), so one
predictor works for every metric type. It only ever *adds* capacity: the result is
``max(reactive, predicted)``, and a falling or flat trend predicts nothing. To stay robust against
a single spike it needs a few points, and it never more than doubles the reactive count.
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


def predict_replicas(
    state: PredictiveState, now: float, lookahead: float, history: float, reactive: int
) -> tuple[int, str] | None:
    """Replicas the trend needs at ``now + lookahead``, when that is more than ``reactive``.

    Returns (replicas, explanation) or None when the prediction adds nothing.
    """
    points = tuple(p for p in state.points if now - history < p[0] <= now)
    if len(points) < MIN_POINTS:
        return None
    fit = linear_trend(points)
    if fit is None:
        return None
    slope, mean_t, mean_v = fit
    if slope <= 0:
        return None
    projected = mean_v + slope * (now + lookahead - mean_t)
    cap = MAX_GROWTH_FACTOR * max(reactive, 1)
    predicted = math.ceil(min(projected, cap) - 1e-9)
    if predicted <= reactive:
        return None
    why = (
        f"predictive: demand rising {slope * 60:.2f} replicas/min over {len(points)} points, "
        f"{predicted} needed in {lookahead:g}s"
    )
    return predicted, why
