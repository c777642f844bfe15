"""Hypothesis properties of the decision engine."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from surge.api.spec import (
    Behavior,
    ResourceAmounts,
    ScalingPolicy,
    ScalingPolicyType,
    ScalingRules,
    SelectPolicy,
    Tolerance,
    parse_policy_spec,
)
from surge.decision import MetricError, Observation, PlanState, PodUsage, ScalarReading, plan
from surge.decision.behavior import BehaviorState, normalize, record_scale
from surge.decision.horizontal import resource_utilization_replicas
from surge.decision.model import ContainerResources, OOMEvent
from surge.decision.vertical import VerticalState, vertical_step
from tests.unit.builders import NOW, pod

SETTINGS = settings(max_examples=150, deadline=None)
MI = 2**20

usage_values = st.one_of(st.none(), st.floats(min_value=0, max_value=8, allow_nan=False))
readings = st.one_of(
    st.builds(ScalarReading, st.floats(min_value=0, max_value=1e5, allow_nan=False)),
    st.just(MetricError("query failed")),
    st.none(),  # no reading at all
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Any, Observation, int, int]:
    min_r = draw(st.integers(0, 10))
    max_r = draw(st.integers(max(min_r, 1), 50))
    current = draw(st.integers(0, 60))
    n_pods = draw(st.integers(0, 12))
    phases = draw(
        st.lists(
            st.sampled_from(["Running", "Running", "Pending", "Failed"]), min_size=n_pods, max_size=n_pods
        )
    )
    ready = draw(st.lists(st.sampled_from([True, True, False, None]), min_size=n_pods, max_size=n_pods))
    usages = draw(st.lists(usage_values, min_size=n_pods, max_size=n_pods))
    pods = [pod(f"p{i}", phase=phases[i], ready=ready[i]) for i in range(n_pods)]
    pod_metrics = draw(
        st.one_of(
            st.just(MetricError("metrics-server down")),
            st.just(
                {
                    f"p{i}": PodUsage(NOW - 5, {"app": ResourceAmounts(cpu=u)})
                    for i, u in enumerate(usages)
                    if u is not None
                }
            ),
        )
    )
    target_kind = draw(st.sampled_from(["AverageValue", "Value"]))
    target_key = "averageValue" if target_kind == "AverageValue" else "value"
    raw = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
        "horizontal": {
            "minReplicas": min_r,
            "maxReplicas": max_r,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": draw(st.integers(1, 200))},
                    },
                },
                {
                    "type": "Prometheus",
                    "prometheus": {
                        "query": "q",
                        "target": {"type": target_kind, target_key: str(draw(st.integers(1, 500)))},
                    },
                },
            ],
            "tolerance": {
                "scaleUp": draw(st.sampled_from([0, 0.05, 0.1])),
                "scaleDown": draw(st.sampled_from([0, 0.1, 0.3])),
            },
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": draw(st.sampled_from([0, 60, 300]))}},
        },
    }
    reading = draw(readings)
    obs = Observation(
        current_replicas=current,
        pods=pods,
        pod_metrics=pod_metrics,
        readings={} if reading is None else {"prometheus-1": reading},
    )
    return parse_policy_spec(raw), obs, min_r, max_r


@SETTINGS
@given(scenario(), st.integers(0, 5))
def test_result_always_within_min_max(case: tuple[Any, Observation, int, int], ticks: int) -> None:
    spec, obs, min_r, max_r = case
    state = PlanState()
    for i in range(ticks + 1):
        d = plan(spec, obs, state, NOW + 15 * i)
        state = d.state
        if obs.current_replicas == 0 and min_r > 0:
            assert d.to_replicas == 0  # HPA: scaled to zero by hand = autoscaling disabled
        else:
            assert min_r <= d.to_replicas <= max_r


@SETTINGS
@given(scenario())
def test_never_scales_down_when_a_metric_failed(case: tuple[Any, Observation, int, int]) -> None:
    spec, obs, min_r, max_r = case
    d = plan(spec, obs, PlanState(), NOW)
    if any(not p.ok for p in d.proposals) and min_r <= obs.current_replicas <= max_r:
        assert d.to_replicas >= obs.current_replicas


policies = st.builds(
    ScalingPolicy,
    st.sampled_from([ScalingPolicyType.PODS, ScalingPolicyType.PERCENT]),
    st.integers(1, 200),
    st.integers(1, 120),
)


def _bound(policy: ScalingPolicy, start: int, up: bool) -> int:
    if policy.type is ScalingPolicyType.PODS:
        return start + policy.value if up else start - policy.value
    if up:
        return math.ceil(start * (100 + policy.value) / 100)
    return math.floor(start * (100 - policy.value) / 100)


@SETTINGS
@given(
    policies,
    policies,
    st.integers(0, 50),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 200)), min_size=1, max_size=40),
)
def test_rate_limits_never_exceeded(
    up: ScalingPolicy, down: ScalingPolicy, start: int, steps: list[tuple[int, int]]
) -> None:
    """Every scale event stays within the policy, measured from the replicas one period earlier."""
    behavior = Behavior(
        scale_up=ScalingRules(0, SelectPolicy.MAX, (up,)),
        scale_down=ScalingRules(0, SelectPolicy.MAX, (down,)),
    )
    state = BehaviorState()
    current, now = start, 0.0
    history: list[tuple[float, int]] = []  # (time, replicas after a scale event)

    def replicas_at(t: float) -> int:
        value = start
        for when, replicas in history:
            if when <= t:
                value = replicas
        return value

    for gap, desired in steps:
        now += gap
        result = normalize(
            current=current,
            desired=desired,
            min_replicas=0,
            max_replicas=10_000,
            behavior=behavior,
            state=state,
            now=now,
        )
        new = result.replicas
        if new > current:
            assert new <= _bound(up, replicas_at(now - up.period_seconds), up=True)
        elif new < current:
            assert new >= _bound(down, replicas_at(now - down.period_seconds), up=False)
        state = record_scale(result.state, behavior, now, current, new)
        if new != current:
            history.append((now, new))
        current = new


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.floats(0, 64, allow_nan=False), st.floats(0, 64 * 2**30, allow_nan=False), st.integers(1, 600)
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([None, "10m", "250m", "2"]),
    st.sampled_from([None, "500m", "4", "100"]),
    st.sampled_from([None, "64Mi", "1Gi"]),
    st.sampled_from([None, "128Mi", "2Gi", "64Gi"]),
    st.booleans(),
)
def test_vertical_recommendation_within_allowed(
    samples: list[tuple[float, float, int]],
    min_cpu: str | None,
    max_cpu: str | None,
    min_mem: str | None,
    max_mem: str | None,
    oom: bool,
) -> None:
    assume(not (min_cpu == "2" and max_cpu == "500m"))
    assume(not (min_mem == "1Gi" and max_mem == "128Mi"))
    allowed_min = {k: v for k, v in {"cpu": min_cpu, "memory": min_mem}.items() if v}
    allowed_max = {k: v for k, v in {"cpu": max_cpu, "memory": max_mem}.items() if v}
    spec = parse_policy_spec(
        {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "vertical": {
                "updateMode": "InPlace",
                "halfLife": "5m",
                "containerPolicies": [
                    {"containerName": "*", "minAllowed": allowed_min, "maxAllowed": allowed_max}
                ],
            },
        }
    )
    vs = spec.vertical
    assert vs is not None
    containers = [ContainerResources("app", ResourceAmounts(0.5, 512 * MI))]
    state, t = VerticalState(), 0.0
    out = None
    for cpu, mem, gap in samples:
        t += gap
        metrics = {"p0": PodUsage(t, {"app": ResourceAmounts(cpu=cpu, memory=mem)})}
        ooms = [OOMEvent("app", t, mem)] if oom else []
        out = vertical_step(
            state, vs, Observation(1, pod_metrics=metrics, containers=containers, ooms=ooms), t
        )
        state = out.state
    assert out is not None
    policy = vs.policy_for("app")
    for est in out.estimates:
        for resource in ("cpu", "memory"):
            lo, hi = policy.min_allowed.get(resource), policy.max_allowed.get(resource)
            for amounts in (est.target, est.lower_bound, est.upper_bound):
                value = amounts.get(resource)
                assert value is not None
                if lo is not None:
                    assert value >= lo
                if hi is not None:
                    assert value <= hi
    for resize in out.resizes:
        for resource in ("cpu", "memory"):
            hi = policy.max_allowed.get(resource)
            value = resize.new_requests.get(resource)
            if hi is not None and value is not None:
                assert value <= hi


@SETTINGS
@given(
    st.integers(1, 10),
    st.lists(usage_values, min_size=1, max_size=10),
    st.lists(st.booleans(), min_size=10, max_size=10),
    st.integers(10, 150),
)
def test_replica_calc_never_flips_direction(
    n: int, usages: list[float | None], pending: list[bool], target: int
) -> None:
    pods = [pod(f"p{i}", phase="Pending" if pending[i] else "Running") for i in range(n)]
    metrics = {
        f"p{i}": PodUsage(NOW - 5, {"app": ResourceAmounts(cpu=u)})
        for i, u in enumerate(usages[:n])
        if u is not None
    }
    ready = [p.name for p in pods if p.phase == "Running" and p.name in metrics]
    if not ready:
        return
    utilization = (
        sum(round((metrics[name].total("cpu") or 0) * 1000) for name in ready) * 100 // (1000 * len(ready))
    )
    calc = resource_utilization_replicas(
        current_replicas=n,
        target_utilization=target,
        resource="cpu",
        pods=pods,
        metrics=metrics,
        now=NOW,
        tolerance=Tolerance(),
    )
    assert calc.value == utilization
    if utilization > target:
        assert calc.replicas >= n
    elif utilization < target:
        assert calc.replicas <= n
    else:
        assert calc.replicas == n
