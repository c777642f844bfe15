from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.api.spec import Fallback, FallbackBehavior
from surge.decision.fallback import fallback_replicas, next_failure_count
from surge.decision.predictive import (
    MAX_GROWTH_FACTOR,
    MIN_POINTS,
    PredictiveState,
    linear_trend,
    predict_replicas,
)


@pytest.mark.parametrize(
    ("previous", "all_failed", "expected"), [(0, False, 0), (0, True, 1), (2, True, 3), (5, False, 0)]
)
def test_failure_count(previous: int, all_failed: bool, expected: int) -> None:
    assert next_failure_count(previous, all_failed) == expected


@pytest.mark.parametrize(
    ("fallback", "failures", "current", "expected"),
    [
        (None, 10, 5, None),
        (Fallback(3, 10), 2, 5, None),
        (Fallback(3, 10), 3, 5, 10),
        (Fallback(3, 10), 7, 5, 10),
        (Fallback(1, 100), 1, 5, 20),  # clamped to max
        (Fallback(1, 0), 1, 1, 2),  # clamped to min
        # RaiseOnly (default): a floor; missing data never scales down.
        (Fallback(3, 2), 3, 5, 5),
        (Fallback(3, 2, FallbackBehavior.RAISE_ONLY), 3, 12, 12),
        (Fallback(3, 8, FallbackBehavior.RAISE_ONLY), 3, 5, 8),
        (Fallback(3, 2, FallbackBehavior.RAISE_ONLY), 3, 30, 20),  # above max: back into range
        # Exact: hold exactly the fallback count, down too.
        (Fallback(3, 2, FallbackBehavior.EXACT), 3, 5, 2),
        (Fallback(3, 8, FallbackBehavior.EXACT), 3, 5, 8),
        (Fallback(3, 2, FallbackBehavior.EXACT), 2, 5, None),
    ],
)
def test_fallback_replicas(
    fallback: Fallback | None, failures: int, current: int, expected: int | None
) -> None:
    got = fallback_replicas(fallback, failures, min_replicas=2, max_replicas=20, current=current)
    assert got == expected


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


def test_slope_from_the_recent_window_and_projected_from_the_latest_point() -> None:
    # 100 s flat at 2, then +1 replica every 5 s (12 per minute). The last 15 s hold 110..120
    # (values 4, 5, 6): slope 0.2/s, so 15 s after the latest point (6) demand is 9. A fit over the
    # whole history (flat points included) would project far less, and from the line, not from 6.
    points = [(float(t), 2.0) for t in range(0, 101, 5)] + [(105, 3.0), (110, 4.0), (115, 5.0), (120, 6.0)]
    predicted = predict_replicas(_state(points), now=120, lookahead=15, history=1800, reactive=6)
    assert predicted is not None
    assert predicted[0] == 9
    assert "12.00 replicas/min over the last 3 points" in predicted[1]
    # Fewer than MIN_POINTS points in the last `lookahead`: the newest MIN_POINTS are used.
    predicted = predict_replicas(_state(points), now=120, lookahead=5, history=1800, reactive=6)
    assert predicted is not None
    assert predicted[0] == 7
    assert "over the last 3 points" in predicted[1]


def test_knee_adds_nothing_even_if_the_window_still_rises() -> None:
    # Steep rise, then the newest MIN_POINTS points are flat: the window's slope is still positive,
    # but demand has stopped rising.
    points: list[tuple[float, float]] = [(0, 2.0), (5, 6.0), (10, 10.0), (15, 14.0), (20, 14.0), (25, 14.0)]
    fit = linear_trend(tuple(points))
    assert fit is not None
    assert fit[0] > 0
    assert predict_replicas(_state(points), now=25, lookahead=30, history=120, reactive=14) is None
    # One tick earlier (14 after 10) it still added.
    predicted = predict_replicas(_state(points[:-1]), now=20, lookahead=30, history=120, reactive=14)
    assert predicted is not None
    assert predicted[0] > 14


def _launch_demand(t: float) -> float:
    """Flat 2 replicas for 60 s, linear to 18 over the next 60 s, then flat at 18."""
    if t <= 60:
        return 2.0
    if t <= 120:
        return 2 + 16 * (t - 60) / 60
    return 18.0


def test_launch_ramp_adds_during_the_ramp_and_stops_after_the_knee() -> None:
    # The launch spike measured in bench/RESULTS.md ("Surge game + predictive"): 5 s ticks,
    # lookahead 30 s, history 2 min; the plan records the reactive (integer) count every tick.
    lookahead, history, knee = 30, 120, 120
    state = PredictiveState()
    rows: list[tuple[int, int, int]] = []  # (t, reactive, recommended)
    for t in range(0, 241, 5):
        reactive = math.ceil(_launch_demand(t) - 1e-9)
        state = state.record(t, reactive, history)
        predicted = predict_replicas(state, t, lookahead, history, reactive)
        if predicted is not None:
            assert predicted[0] > reactive
            assert predicted[1].startswith("predictive: demand rising")
        rows.append((t, reactive, predicted[0] if predicted else reactive))
    for t, reactive, recommended in rows:
        if t <= 60:  # (c) the flat baseline adds nothing
            assert recommended == reactive, t
        if 90 <= t <= knee:  # (a) the second half of the ramp adds capacity...
            assert recommended > reactive, t
            # ... not far above the demand 30 s later. Past t = 90 the knee falls inside the
            # lookahead, which no trend can see coming: there the bound is the ramp continued
            # (2 + 16 (t + 30 - 60) / 60), i.e. the overshoot is only the ramp's unknown end.
            if t + lookahead <= knee:
                assert recommended <= _launch_demand(t + lookahead) + 2, t
            assert recommended <= 2 + 16 * (t + lookahead - 60) / 60 + 2, t
        if t >= knee + 20:  # (b) nothing added from ~20 s after the knee (the old fit: ~100 s)
            assert recommended == reactive, t
    # The whole ramp is ahead of reactive, never above what arrives within the lookahead (+2).
    for t, reactive, recommended in rows:
        if t > 60 and t + lookahead <= knee:
            assert reactive < recommended <= _launch_demand(t + lookahead) + 2, t


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(min_value=0, max_value=2e9),
    first=st.floats(min_value=0, max_value=1000),
    steps=st.lists(
        st.tuples(st.floats(min_value=0.5, max_value=60), st.floats(min_value=0, max_value=50)),
        min_size=0,
        max_size=60,
    ),
    lookahead=st.floats(min_value=1, max_value=3600),
    history_factor=st.floats(min_value=2, max_value=50),
    slack=st.integers(min_value=0, max_value=5),
)
def test_falling_or_flat_series_never_adds(
    start: float,
    first: float,
    steps: list[tuple[float, float]],
    lookahead: float,
    history_factor: float,
    slack: int,
) -> None:
    # Non-increasing demand (flat runs included), at irregular ticks; reactive anywhere near it.
    history = lookahead * history_factor
    t, v = start, first
    state = PredictiveState().record(t, v, history)
    for dt, drop in steps:
        t, v = t + dt, max(v - drop, 0.0)
        state = state.record(t, v, history)
        reactive = max(math.ceil(v) - slack, 0)
        assert predict_replicas(state, t, lookahead, history, reactive) is None


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=500), min_size=0, max_size=40),
    tick=st.floats(min_value=0.5, max_value=30),
    lookahead=st.floats(min_value=1, max_value=600),
    reactive=st.integers(min_value=0, max_value=500),
)
def test_any_series_only_adds_within_the_cap(
    values: list[float], tick: float, lookahead: float, reactive: int
) -> None:
    history = 4 * lookahead
    state = PredictiveState()
    for i, v in enumerate(values):
        state = state.record(i * tick, v, history)
    now = (len(values) - 1) * tick
    predicted = predict_replicas(state, now, lookahead, history, reactive)
    in_history = [p for p in state.points if now - history < p[0] <= now]
    if predicted is not None:
        assert len(in_history) >= MIN_POINTS
        assert in_history[-1][1] > in_history[-MIN_POINTS][1]
        assert reactive < predicted[0] <= MAX_GROWTH_FACTOR * max(reactive, 1)


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
