"""The planner: H + V together, failures, fallback, behavior, explanations and state."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from surge.api import conditions as cond
from surge.api.conditions import set_condition
from surge.api.spec import FallbackBehavior, PolicySpec, ResourceAmounts
from surge.decision import (
    BufferReading,
    ContainerResources,
    Decision,
    MetricError,
    Observation,
    PlanState,
    PodUsage,
    ScalarReading,
    plan,
)
from tests.unit.builders import NOW, cpu_metric, cpu_usage, pods, prom_metric, spec

FAST_DOWN = {"scaleDown": {"stabilizationWindowSeconds": 0}}


def hspec(*metrics: dict[str, Any], **horizontal: Any) -> PolicySpec:
    raw: dict[str, Any] = {
        "minReplicas": 1,
        "maxReplicas": 20,
        "metrics": list(metrics),
        "behavior": FAST_DOWN,
    }
    raw.update(horizontal)
    return spec(raw)


def obs(current: int, cpu: list[float | None] | None = None, **readings: Any) -> Observation:
    return Observation(
        current_replicas=current,
        pods=pods(current),
        pod_metrics=cpu_usage(cpu) if cpu is not None else None,
        readings=readings,
    )


def test_single_cpu_metric_scales_with_explanation() -> None:
    d = plan(hspec(cpu_metric(50)), obs(4, [0.75] * 4), PlanState(), NOW)
    assert (d.from_replicas, d.to_replicas, d.limited_by) == (4, 6, "")
    assert d.scale_changed
    assert d.reason == "cpu: cpu utilization 75% of 50% target over 4 ready pod(s) -> 6"
    assert d.metric_statuses()[0].to_dict() == {
        "name": "cpu",
        "type": "Resource",
        "value": "75",
        "target": "50",
        "proposedReplicas": 6,
        "error": "",
    }


def test_max_of_metrics_wins() -> None:
    s = hspec(cpu_metric(50), prom_metric(average="100"))
    d = plan(s, obs(4, [0.5] * 4, **{"prometheus-1": ScalarReading(900)}), PlanState(), NOW)
    assert [p.replicas for p in d.proposals] == [4, 9]
    assert d.to_replicas == 8  # 9 wanted, but max(4 + 4, 4 * 2) per 15s
    assert d.limited_by == "ScaleUpLimit"
    assert "prometheus-1" in d.reason
    assert "(max of 2 metrics)" in d.reason
    assert "ScaleUpLimit" in d.reason


def test_failed_metric_blocks_scale_down_only() -> None:
    s = hspec(cpu_metric(50), prom_metric(average="100"))
    down = plan(s, obs(8, [0.1] * 8, **{"prometheus-1": MetricError("timeout")}), PlanState(), NOW)
    assert down.to_replicas == 8
    assert "scale-down to 2 blocked because a metric failed (prometheus-1: timeout): keeping 8" in down.reason
    assert not down.scaling_active  # HPA: ScalingActive False with the failed metric's reason
    assert down.state.behavior.recommendations == ()  # nothing was computed, nothing recorded
    assert down.state.consecutive_failures == 0  # one metric works: no fallback countdown
    up = plan(s, obs(4, [1.0] * 4, **{"prometheus-1": MetricError("timeout")}), PlanState(), NOW)
    assert up.to_replicas == 8


def test_all_failed_holds_then_falls_back_then_recovers() -> None:
    s = hspec(cpu_metric(50), fallback={"failureThreshold": 3, "replicas": 12})
    broken = Observation(current_replicas=4, pods=pods(4), pod_metrics=MetricError("metrics-server down"))
    state = PlanState()
    decisions: list[Decision] = []
    for i in range(4):
        d = plan(s, broken, state, NOW + 15 * i)
        decisions.append(d)
        state = d.state
    assert [d.to_replicas for d in decisions] == [4, 4, 8, 8]  # fallback 12 goes through the rate limit
    assert [d.state.consecutive_failures for d in decisions] == [1, 2, 3, 4]
    assert not decisions[0].fallback_active
    assert "fallback to 12 after 2 more failure(s)" in decisions[0].reason
    assert decisions[2].fallback_active
    assert "fallback to 12 replicas" in decisions[2].reason
    assert not decisions[0].scaling_active
    ok = plan(s, obs(4, [0.5] * 4), state, NOW + 60)
    assert ok.state.consecutive_failures == 0
    assert not ok.fallback_active


@pytest.mark.parametrize(
    ("behavior", "current", "expected"),
    [
        (FallbackBehavior.RAISE_ONLY, 5, 5),  # a Prometheus outage never scales 5 -> 2
        (FallbackBehavior.RAISE_ONLY, 1, 2),  # but raises to the floor
        (FallbackBehavior.EXACT, 5, 2),  # the user asked for exactly 2
        (FallbackBehavior.EXACT, 1, 2),
    ],
)
def test_fallback_behaviour_decides_whether_missing_data_may_scale_down(
    behavior: FallbackBehavior, current: int, expected: int
) -> None:
    base = hspec(prom_metric(average="10"), fallback={"failureThreshold": 1, "replicas": 2})
    assert base.horizontal is not None
    assert base.horizontal.fallback is not None
    fallback = dataclasses.replace(base.horizontal.fallback, behavior=behavior)
    s = dataclasses.replace(base, horizontal=dataclasses.replace(base.horizontal, fallback=fallback))
    broken = Observation(current_replicas=current, readings={"prometheus-0": MetricError("down")})
    d = plan(s, broken, PlanState(), NOW)
    assert d.fallback_active
    assert d.to_replicas == expected
    assert ("RaiseOnly" in d.reason) is (behavior is FallbackBehavior.RAISE_ONLY)


def test_all_failed_without_fallback_keeps_count_but_fixes_range() -> None:
    s = hspec(cpu_metric(50), minReplicas=2, maxReplicas=5)
    broken = Observation(current_replicas=9, pods=pods(9), pod_metrics=MetricError("down"))
    d = plan(s, broken, PlanState(), NOW)
    assert (d.to_replicas, d.limited_by) == (5, "TooManyReplicas")
    assert d.state.behavior.events  # the correction is a real scale
    assert not d.unapplied_state.behavior.events


def test_zero_replicas_with_min_above_zero_disables_scaling() -> None:
    d = plan(hspec(cpu_metric(50)), Observation(current_replicas=0), PlanState(), NOW)
    assert (d.to_replicas, d.scaling_active) == (0, False)
    assert "autoscaling is disabled" in d.reason


def test_buffer_scales_from_zero_when_min_is_zero() -> None:
    s = hspec(
        {"type": "Buffer", "buffer": {"usedQuery": "u", "capacityPerReplica": "100", "size": "20"}},
        minReplicas=0,
    )
    d = plan(
        s, Observation(current_replicas=0, readings={"buffer-0": BufferReading(used=0)}), PlanState(), NOW
    )
    assert d.to_replicas == 1  # 20 free slots need one replica
    d = plan(
        s, Observation(current_replicas=1, readings={"buffer-0": BufferReading(used=450)}), PlanState(), NOW
    )
    assert d.to_replicas == 5  # ceil(470 / 100)


def test_predictive_adds_capacity_ahead_of_a_ramp() -> None:
    s = hspec(prom_metric(average="10"), predictive={"lookahead": "1m", "history": "10m"}, maxReplicas=100)
    state = PlanState()
    current = 2
    extra = []
    for i in range(20):
        t = NOW + 15 * i
        players = 20 + 10 * i  # +40 players/min = +4 replicas/min
        d = plan(
            s,
            Observation(current_replicas=current, readings={"prometheus-0": ScalarReading(players)}),
            state,
            t,
        )
        reactive = d.proposals[0].replicas
        assert reactive is not None
        assert d.recommended_replicas is not None
        assert d.recommended_replicas >= reactive  # never below reactive
        extra.append(d.recommended_replicas - reactive)
        state, current = d.state, d.to_replicas
    assert max(extra) >= 3  # about lookahead * slope = 4 replicas ahead
    assert "predictive" in d.reason


def _vertical_history(s: PolicySpec, request: float, usage: float, ticks: int = 40) -> Decision:
    """Plan ``ticks`` times on a steady load without applying anything; return the last decision."""
    containers = [ContainerResources("app", ResourceAmounts(request, 512 * 2**20))]
    state = PlanState()
    d = None
    for i in range(ticks):
        t = NOW + 15 * i
        metrics = {
            f"p{j}": PodUsage(t - 1, {"app": ResourceAmounts(cpu=usage, memory=300 * 2**20)})
            for j in range(4)
        }
        o = Observation(
            current_replicas=4, pods=pods(4, cpu_request=request), pod_metrics=metrics, containers=containers
        )
        d = plan(s, o, state, t)
        state = d.unapplied_state
    assert d is not None
    return d


def test_horizontal_counts_pods_of_the_new_size() -> None:
    horizontal = {"minReplicas": 1, "maxReplicas": 50, "metrics": [cpu_metric(50)]}
    coordinated = spec(horizontal, {"updateMode": "InPlace", "halfLife": "10m"})
    alone = spec(horizontal, {"updateMode": "Off", "halfLife": "10m"})
    # 400m used of a 250m request = 160% of a 50% target: HPA alone wants ceil(3.2 * 4) = 13 pods.
    d_alone = _vertical_history(alone, request=0.25, usage=0.4)
    assert d_alone.proposals[0].replicas == 13
    assert d_alone.resizes == ()
    assert d_alone.estimates  # Off still recommends
    # Vertical raises the request to ~460m first; 400m of that is ~86%: only 7 pods are needed.
    d = _vertical_history(coordinated, request=0.25, usage=0.4)
    (resize,) = d.resizes
    new_cpu = resize.new_requests.cpu
    assert new_cpu is not None
    assert 0.44 <= new_cpu <= 0.48
    assert d.proposals[0].replicas == 7
    assert d.conflicts == ()


def test_initial_mode_with_cpu_utilization_reports_conflict() -> None:
    s = spec({"maxReplicas": 10, "metrics": [cpu_metric(50)]}, {"updateMode": "Initial"})
    d = plan(s, obs(2, [0.5, 0.5]), PlanState(), NOW)
    assert d.conflicts
    conflict = {c.type: c for c in d.conditions()}[cond.CONFLICT]
    assert conflict.status is True
    assert "Initial" in conflict.message


def test_vertical_only_policy() -> None:
    s = spec(vertical={"updateMode": "InPlace", "halfLife": "1m"})
    containers = [ContainerResources("app", ResourceAmounts(0.1, 64 * 2**20))]
    state = PlanState()
    resized_at = None
    for i in range(10):
        t = NOW + 15 * i
        metrics = {"p0": PodUsage(t, {"app": ResourceAmounts(cpu=1.0, memory=1 * 2**30)})}
        d = plan(s, Observation(current_replicas=3, pod_metrics=metrics, containers=containers), state, t)
        state = d.unapplied_state
        if d.resizes and resized_at is None:
            resized_at = i
    assert resized_at is not None
    assert resized_at > 0
    assert (d.from_replicas, d.to_replicas) == (3, 3)
    assert d.resizes
    assert d.reason.startswith("vertical only: cpu 100m ->")
    assert d.recommendation_statuses()[0].container_name == "app"


def test_conditions_follow_hpa_vocabulary() -> None:
    s = hspec(cpu_metric(50), maxReplicas=5)
    limited = {c.type: c for c in plan(s, obs(4, [1.0] * 4), PlanState(), NOW).conditions()}
    assert limited[cond.ABLE_TO_SCALE].status is True
    assert limited[cond.SCALING_ACTIVE].reason == "ValidMetricFound"
    assert (limited[cond.SCALING_LIMITED].status, limited[cond.SCALING_LIMITED].reason) == (
        True,
        "TooManyReplicas",
    )
    assert limited[cond.METRICS_AVAILABLE].reason == "AllMetricsAvailable"
    assert limited[cond.CONFLICT].status is False
    failed = Observation(current_replicas=4, pods=pods(4), pod_metrics=MetricError("down"))
    broken = {c.type: c for c in plan(s, failed, PlanState(), NOW).conditions()}
    assert (broken[cond.SCALING_ACTIVE].status, broken[cond.SCALING_ACTIVE].reason) == (
        False,
        "FailedGetResourceMetric",
    )
    assert broken[cond.METRICS_AVAILABLE].reason == "AllMetricsFailed"
    assert broken[cond.SCALING_LIMITED].reason == "DesiredWithinRange"
    # They feed set_condition as they are.
    conditions: list[dict[str, Any]] = []
    for c in plan(s, failed, PlanState(), NOW).conditions():
        conditions = set_condition(
            conditions, c.type, c.status, c.reason, c.message, "2026-11-27T22:00:00Z", 1
        )
    assert len(conditions) == 5


def test_stabilized_decision_reports_it() -> None:
    s = hspec(cpu_metric(50), behavior={})  # default 300s scale-down window
    first = plan(s, obs(4, [0.5] * 4), PlanState(), NOW)
    d = plan(s, obs(4, [0.1] * 4), first.state, NOW + 15)
    assert (d.to_replicas, d.limited_by) == (4, "ScaleDownStabilized")
    able = {c.type: c for c in d.conditions()}[cond.ABLE_TO_SCALE]
    assert able.reason == "ScaleDownStabilized"


def test_state_applied_vs_unapplied_and_serialisable() -> None:
    s = spec(
        {"maxReplicas": 20, "metrics": [cpu_metric(50)], "predictive": {"lookahead": "30s"}},
        {"updateMode": "InPlace"},
    )
    o = Observation(
        current_replicas=4,
        pods=pods(4),
        pod_metrics=cpu_usage([1.0] * 4),
        containers=[ContainerResources("app", ResourceAmounts(1.0, 2**30))],
    )
    d = plan(s, o, PlanState(), NOW)
    assert d.to_replicas == 8
    assert len(d.state.behavior.events) == 1
    assert d.unapplied_state.behavior.events == ()
    assert d.state.vertical == d.unapplied_state.vertical
    data = json.loads(json.dumps(d.state.to_dict()))
    assert PlanState.from_dict(data, s) == d.state
    with pytest.raises(ValueError, match="invalid"):
        PlanState.from_dict({"consecutiveFailures": "many"}, s)


def test_long_text_is_clipped_for_the_crd() -> None:
    s = hspec(cpu_metric(50))
    broken = Observation(current_replicas=2, pods=pods(2), pod_metrics=MetricError("x" * 5000))
    d = plan(s, broken, PlanState(), NOW)
    assert len(d.last_decision("2026-11-27T22:00:00Z").reason) <= 1024
    assert len(d.metric_statuses()[0].error) <= 1024
