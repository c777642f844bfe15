from __future__ import annotations

import pytest

from surge.api.spec import Fallback
from surge.decision.fallback import fallback_replicas, next_failure_count
from surge.decision.predictive import PredictiveState, linear_trend, predict_replicas


@pytest.mark.parametrize(
    ("previous", "all_failed", "expected"), [(0, False, 0), (0, True, 1), (2, True, 3), (5, False, 0)]
)
def test_failure_count(previous: int, all_failed: bool, expected: int) -> None:
    assert next_failure_count(previous, all_failed) == expected


@pytest.mark.parametrize(
    ("fallback", "failures", "expected"),
    [
        (None, 10, None),
        (Fallback(3, 10), 2, None),
        (Fallback(3, 10), 3, 10),
        (Fallback(3, 10), 7, 10),
        (Fallback(1, 100), 1, 20),  # clamped to max
        (Fallback(1, 0), 1, 2),  # clamped to min
    ],
)
def test_fallback_replicas(fallback: Fallback | None, failures: int, expected: int | None) -> None:
    assert fallback_replicas(fallback, failures, min_replicas=2, max_replicas=20) == expected


def _state(points: list[tuple[float, float]]) -> PredictiveState:
    state = PredictiveState()
    for t, v in points:
        state = state.record(t, v, history=1800)
    return state


def test_linear_trend_exact_line() -> None:
    fit = linear_trend(((0, 1.0), (60, 2.0), (120, 3.0)))
    assert fit is not None
    slope, mean_t, mean_v = fit
    assert slope == pytest.approx(1 / 60)
    assert (mean_t, mean_v) == (60, 2.0)
    assert linear_trend(((5, 1.0),)) is None
    assert linear_trend(((5, 1.0), (5, 2.0))) is None


def test_rising_demand_is_projected_ahead() -> None:
    # +1 replica per minute; at t=300 demand is 6: in 60s it will be 7.
    state = _state([(t, 1 + t / 60) for t in range(0, 301, 15)])
    predicted = predict_replicas(state, now=300, lookahead=60, history=1800, reactive=6)
    assert predicted is not None
    assert predicted[0] == 7
    assert "rising" in predicted[1]


@pytest.mark.parametrize(
    "points",
    [
        [(t, 10.0) for t in range(0, 301, 15)],  # flat
        [(t, 20 - t / 60) for t in range(0, 301, 15)],  # falling
        [(0, 1.0), (15, 2.0)],  # too few points
        [(t, 1 + t / 60) for t in range(0, 31, 15)] + [(2000, 1.0)],  # old points fell out of the history
    ],
)
def test_no_prediction(points: list[tuple[float, float]]) -> None:
    now = points[-1][0]
    assert predict_replicas(_state(points), now=now, lookahead=60, history=1800, reactive=10) is None


def test_prediction_never_below_reactive_and_capped() -> None:
    state = _state([(t, 1 + t) for t in range(0, 10)])  # +60 replicas per minute
    predicted = predict_replicas(state, now=9, lookahead=600, history=1800, reactive=5)
    assert predicted is not None
    assert predicted[0] == 10  # at most double the reactive count
    assert predict_replicas(state, now=9, lookahead=1, history=1800, reactive=50) is None


def test_record_prunes_and_round_trips() -> None:
    state = PredictiveState()
    for t in range(0, 4000, 10):
        state = state.record(t, 1.0, history=600)
    assert all(t > 3990 - 600 for t, _ in state.points)
    assert state.record(3990, 5.0, history=600).points[-1] == (3990, 5.0)  # the same tick replaces
    assert len(state.record(3990, 5.0, history=600).points) == len(state.points)
    assert PredictiveState.from_dict(state.to_dict()) == state
    with pytest.raises(ValueError, match="predictive"):
        PredictiveState.from_dict({"points": [[1]]})
