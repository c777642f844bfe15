"""CheckpointSchedule: when a write is due, and what a restart from the last write decides."""

from __future__ import annotations

import json

from surge.decision import Observation, PlanState, ScalarReading, plan
from surge.decision.behavior import BehaviorState, Recommendation, ScaleEvent
from surge.decision.checkpoint import decode, encode
from surge.persistence.schedule import CheckpointSchedule
from tests.unit.builders import NOW, pods, prom_metric, spec

SPEC = spec(
    horizontal={
        "minReplicas": 2,
        "maxReplicas": 20,
        "metrics": [prom_metric(average="10")],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 90}},
    }
)


def recs(*pairs: tuple[float, int]) -> PlanState:
    return PlanState(BehaviorState(tuple(Recommendation(NOW + t, r) for t, r in pairs)))


def test_off_when_min_interval_is_zero() -> None:
    assert CheckpointSchedule(0).due(recs((0, 5)), SPEC, NOW) is None


def test_first_state_is_due_and_empty_state_is_not() -> None:
    schedule = CheckpointSchedule(30)
    assert schedule.due(PlanState(), SPEC, NOW) is None
    assert schedule.due(recs((0, 5)), SPEC, NOW) == "FirstSave"


def test_periodic_only_when_changed_and_at_most_once_per_interval() -> None:
    schedule = CheckpointSchedule(30)
    schedule.saved(recs((0, 5)), NOW)
    assert schedule.due(recs((0, 5)), SPEC, NOW + 60) is None  # unchanged
    steady = recs((0, 5), (15, 5))
    assert schedule.due(steady, SPEC, NOW + 15) is None  # changed, but too soon
    assert schedule.due(recs((0, 5), (15, 5), (30, 5)), SPEC, NOW + 30) == "Periodic"


def test_scale_action_is_due_at_once_even_within_the_spacing_but_not_after_a_failure() -> None:
    schedule = CheckpointSchedule(30)
    schedule.saved(recs((0, 5)), NOW)
    scaled = PlanState(BehaviorState((Recommendation(NOW, 5),), (ScaleEvent(NOW + 3, 2),)))
    # A restart right after a scale step must find it: the rate policy already bounds these writes.
    assert schedule.due(scaled, SPEC, NOW + 3) == "ScaleAction"
    schedule.failed(NOW + 3)
    assert schedule.due(scaled, SPEC, NOW + 4) is None  # a failing API is not hammered
    assert schedule.due(scaled, SPEC, NOW + 9) == "ScaleAction"


def test_the_state_found_at_start_is_not_a_write() -> None:
    schedule = CheckpointSchedule(30)
    schedule.loaded(PlanState(), NOW)
    first_step = PlanState(BehaviorState((Recommendation(NOW + 1, 4),), (ScaleEvent(NOW + 1, 2),)))
    assert schedule.due(first_step, SPEC, NOW + 1) == "ScaleAction"
    schedule.saved(first_step, NOW + 1)
    unchanged_but_periodic = PlanState(
        BehaviorState((Recommendation(NOW + 3, 4),), (ScaleEvent(NOW + 1, 2),))
    )
    assert schedule.due(unchanged_but_periodic, SPEC, NOW + 3) is None  # within 5 s of a real write


def test_a_fall_below_the_held_maximum_is_due_at_once() -> None:
    schedule = CheckpointSchedule(30)
    schedule.saved(recs((0, 12), (15, 12)), NOW + 15)
    assert schedule.due(recs((0, 12), (15, 12), (30, 12)), SPEC, NOW + 30) is None  # steady: periodic
    dropped = recs((0, 12), (15, 12), (30, 12), (45, 2))
    assert schedule.due(dropped, SPEC, NOW + 45) == "StabilizationHold"
    schedule.saved(dropped, NOW + 45)
    assert schedule.due(recs((0, 12), (15, 12), (30, 12), (45, 2), (60, 2)), SPEC, NOW + 60) is None


def test_failed_write_waits_the_spacing() -> None:
    schedule = CheckpointSchedule(30)
    schedule.failed(NOW)
    assert schedule.due(recs((0, 5)), SPEC, NOW + 1) is None
    assert schedule.due(recs((0, 5)), SPEC, NOW + 5) == "FirstSave"


def run_drop(restart_at: float | None, min_interval: float = 30) -> list[tuple[float, int]]:
    """Load 120 -> 12 replicas for 5 min, then 20 (2 replicas); 5 s ticks; returns (time, replicas) of
    every scale. With ``restart_at``, the process dies then and restarts 3 s later from its last
    checkpoint, written when the schedule said so (none when ``min_interval`` is 0)."""
    schedule = CheckpointSchedule(min_interval)
    state, saved, replicas, scales = PlanState(), None, 12, []
    t = 0.0
    while t < 600:
        now = NOW + t
        if restart_at is not None and t >= restart_at:
            t = restart_at + 3  # down for 3 s: memory is lost
            now, restart_at = NOW + t, None
            state = decode(json.loads(saved), SPEC, policy_uid="u", now=now).state if saved else PlanState()
            schedule = CheckpointSchedule(min_interval)
            schedule.saved(state, now)
        load = 120.0 if t < 300 else 20.0
        obs = Observation(replicas, pods(replicas), readings={"prometheus-0": ScalarReading(load)})
        decision = plan(SPEC, obs, state, now)
        state = decision.state
        if decision.scale_changed:
            replicas = decision.to_replicas
            scales.append((t, replicas))
        if schedule.due(state, SPEC, now):
            saved = json.dumps(encode(state, now, now, policy_uid="u", generation=1))
            schedule.saved(state, now)
        t += 5
    return scales


def test_restart_inside_the_scale_down_window_scales_down_no_earlier() -> None:
    baseline = run_drop(restart_at=None)
    assert baseline == [(385.0, 2)]  # the last high recommendation (295 s) + the 90 s window
    assert run_drop(restart_at=340.0, min_interval=0) == [(343.0, 2)]  # without checkpoints: at once
    for restart in (301.0, 305.0, 340.0, 380.0):
        scales = run_drop(restart_at=restart)
        assert scales[0][0] >= 385.0, (restart, scales)
        assert [r for _, r in scales] == [2], (restart, scales)
