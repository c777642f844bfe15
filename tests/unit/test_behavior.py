"""HPA autoscaling/v2 behavior over simulated time."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from surge.api.spec import (
    Behavior,
    ScalingPolicy,
    ScalingPolicyType,
    ScalingRules,
    SelectPolicy,
    default_scale_down_rules,
    default_scale_up_rules,
)
from surge.decision.behavior import (
    BehaviorState,
    Recommendation,
    ScaleEvent,
    normalize,
    record_scale,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)

PODS, PERCENT = ScalingPolicyType.PODS, ScalingPolicyType.PERCENT


def rules(
    *policies: tuple[ScalingPolicyType, int, int], window: int = 0, select: str = "Max"
) -> ScalingRules:
    return ScalingRules(window, SelectPolicy(select), tuple(ScalingPolicy(t, v, p) for t, v, p in policies))


@dataclass
class Sim:
    """Runs normalize() tick by tick, applying each decision like a perfect actuator."""

    behavior: Behavior
    current: int
    min_replicas: int = 1
    max_replicas: int = 1000
    state: BehaviorState = field(default_factory=BehaviorState)

    def tick(self, now: float, desired: int) -> tuple[int, str]:
        result = normalize(
            current=self.current,
            desired=desired,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            behavior=self.behavior,
            state=self.state,
            now=now,
        )
        self.state = record_scale(result.state, self.behavior, now, self.current, result.replicas)
        self.current = result.replicas
        return result.replicas, result.limited_by or result.stabilized_by

    def run(self, desired: list[int], interval: float = 15.0) -> list[int]:
        return [self.tick(i * interval, d)[0] for i, d in enumerate(desired)]


def test_default_scale_up_doubles_or_adds_four_every_15s() -> None:
    sim = Sim(Behavior(), current=1)
    assert sim.run([100] * 7) == [5, 10, 20, 40, 80, 100, 100]


def test_scale_up_within_one_period_is_limited_by_period_start() -> None:
    sim = Sim(Behavior(), current=1)
    assert sim.tick(0, 100) == (5, "ScaleUpLimit")
    assert sim.tick(5, 100) == (5, "ScaleUpLimit")  # 1 + 4 already used in this 15s period
    assert sim.tick(10, 100) == (5, "ScaleUpLimit")
    assert sim.tick(15, 100) == (10, "ScaleUpLimit")  # the t=0 event is out of (0, 15]


def test_default_scale_down_waits_for_the_300s_stabilization_window() -> None:
    sim = Sim(Behavior(), current=10)
    sim.tick(0, 10)
    replicas = [sim.tick(t, 2)[0] for t in range(15, 301, 15)]
    assert replicas[:-1] == [10] * (len(replicas) - 1)  # the t=0 recommendation of 10 is still in the window
    assert replicas[-1] == 2  # at t=300 it has left: the window is (0, 300]


def test_first_scale_down_with_empty_history_is_immediate() -> None:
    behavior = Behavior(scale_down=rules((PERCENT, 100, 15), window=60))
    assert Sim(behavior, current=10).tick(0, 8) == (8, "")


def test_scale_down_stabilization_holds_highest_recent_recommendation() -> None:
    behavior = Behavior(scale_down=rules((PERCENT, 100, 15), window=60))
    sim = Sim(behavior, current=10)
    sim.tick(0, 10)
    assert sim.tick(15, 6) == (10, "ScaleDownStabilized")
    assert sim.tick(30, 8) == (10, "ScaleDownStabilized")
    assert sim.tick(45, 5) == (10, "ScaleDownStabilized")
    assert sim.tick(60, 5) == (8, "ScaleDownStabilized")  # window (0, 60]: max of 6, 8, 5, 5
    assert sim.tick(89, 5) == (8, "ScaleDownStabilized")  # (29, 89] still holds t=30's 8
    assert sim.tick(90, 5) == (5, "")  # (30, 90]: gone


def test_scale_up_stabilization_uses_min_of_window() -> None:
    behavior = Behavior(scale_up=rules((PODS, 100, 15), window=30))
    sim = Sim(behavior, current=2)
    sim.tick(0, 2)
    assert sim.tick(10, 9) == (2, "ScaleUpStabilized")
    assert sim.tick(20, 7) == (2, "ScaleUpStabilized")
    assert sim.tick(31, 9) == (7, "ScaleUpStabilized")  # min(9 at t=10, 7 at t=20, 9)
    assert sim.tick(51, 9) == (9, "")


@pytest.mark.parametrize(
    ("scale_up", "current", "events", "expected"),
    [
        (default_scale_up_rules(), 1, (), 5),
        (default_scale_up_rules(), 10, (), 20),
        (rules((PODS, 4, 15), (PERCENT, 100, 15), select="Min"), 10, (), 14),
        (rules((PODS, 4, 15), select="Disabled"), 10, (), 10),
        (rules((PERCENT, 10, 60)), 10, (), 11),  # exact: ceil(10 * 1.1) = 11, float64 says 12
        (rules((PERCENT, 50, 60)), 0, (), 0),  # percent of nothing
        # Scaled up 6 -> 10 at t=50: the period started at 6, so at most 6 + 4.
        (rules((PODS, 4, 60)), 10, (ScaleEvent(50, 4),), 10),
        (rules((PODS, 4, 60)), 10, (ScaleEvent(-20, 4),), 14),  # event left the 60s period
        # A scale-down in the period raises the period start: 10 -> 7 means we started at 10.
        (rules((PODS, 4, 60)), 7, (ScaleEvent(50, -3),), 14),
    ],
)
def test_scale_up_limit(
    scale_up: ScalingRules, current: int, events: tuple[ScaleEvent, ...], expected: int
) -> None:
    assert scale_up_limit(current, events, scale_up, now=60) == expected


@pytest.mark.parametrize(
    ("scale_down", "current", "events", "expected"),
    [
        (default_scale_down_rules(), 10, (), 0),
        (rules((PERCENT, 50, 60)), 9, (), 4),  # HPA truncates 4.5
        (rules((PODS, 1, 60), (PERCENT, 50, 60)), 10, (), 5),  # Max: the policy allowing most change
        (rules((PODS, 1, 60), (PERCENT, 50, 60), select="Min"), 10, (), 9),
        (rules((PODS, 1, 60), select="Disabled"), 10, (), 10),
        (rules((PODS, 2, 60)), 8, (ScaleEvent(30, -2),), 8),  # already used: hold
        (rules((PODS, 2, 60)), 8, (ScaleEvent(-30, -2),), 6),
    ],
)
def test_scale_down_limit(
    scale_down: ScalingRules, current: int, events: tuple[ScaleEvent, ...], expected: int
) -> None:
    assert scale_down_limit(current, events, scale_down, now=60) == expected


def test_pods_policy_scale_down_over_time() -> None:
    behavior = Behavior(scale_down=rules((PODS, 1, 60), window=0))
    sim = Sim(behavior, current=5)
    assert sim.run([1] * 9, interval=30) == [4, 4, 3, 3, 2, 2, 1, 1, 1]


@pytest.mark.parametrize(
    ("current", "desired", "min_r", "max_r", "expected", "limited_by"),
    [
        (5, 50, 1, 8, 8, "TooManyReplicas"),
        (5, 0, 3, 8, 3, "TooFewReplicas"),
        (3, 1, 3, 8, 3, "TooFewReplicas"),
        (12, 12, 1, 8, 8, "TooManyReplicas"),  # target above max: corrected directly
        (0, 0, 2, 8, 2, "TooFewReplicas"),
        (5, 5, 1, 8, 5, ""),
        (2, 40, 1, 30, 6, "ScaleUpLimit"),  # rate limit binds before max: max(2 + 4, 2 * 2)
        (10, 40, 1, 15, 15, "TooManyReplicas"),  # max binds before rate limit (20)
    ],
)
def test_clamping_records_reason(
    current: int, desired: int, min_r: int, max_r: int, expected: int, limited_by: str
) -> None:
    behavior = Behavior(scale_down=rules((PERCENT, 100, 15), window=0))
    result = normalize(
        current=current,
        desired=desired,
        min_replicas=min_r,
        max_replicas=max_r,
        behavior=behavior,
        state=BehaviorState(),
        now=0,
    )
    assert (result.replicas, result.limited_by) == (expected, limited_by)
    assert min_r <= result.replicas <= max_r


def test_stabilize_pure_function() -> None:
    behavior = Behavior(scale_up=rules((PODS, 4, 15), window=60), scale_down=rules((PODS, 4, 15), window=120))
    recs = (Recommendation(0, 3), Recommendation(50, 9), Recommendation(100, 6))
    # Scale-up floor: min over (40, 100] = min(9, 6, 8) = 6; scale-down ceiling: max over all = 9.
    assert stabilize(5, 8, behavior, recs, now=100) == 6
    assert stabilize(7, 8, behavior, recs, now=100) == 7  # already above the floor: hold
    assert stabilize(12, 2, behavior, recs, now=100) == 9  # scale down no further than 9
    assert stabilize(5, 5, behavior, (), now=100) == 5


def test_state_is_pruned_to_the_longest_window_and_round_trips() -> None:
    behavior = Behavior(scale_up=rules((PODS, 4, 30), window=10), scale_down=rules((PODS, 4, 60), window=0))
    sim = Sim(behavior, current=1)
    for t in range(0, 300, 5):
        sim.tick(t, 1 + (t // 5) % 7)
    assert all(r.time > 295 - 60 for r in sim.state.recommendations)
    assert all(e.time > 295 - 60 for e in sim.state.events)
    assert sim.state.events  # recent scale events are kept
    assert BehaviorState.from_dict(sim.state.to_dict()) == sim.state


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid behavior state"):
        BehaviorState.from_dict({"recommendations": [["x", 1]]})


def test_record_scale_ignores_no_change() -> None:
    state = BehaviorState()
    assert record_scale(state, Behavior(), 0, 3, 3) is state
    assert record_scale(state, Behavior(), 0, 3, 1).events == (ScaleEvent(0, -2),)
