"""Property: a save/restore in the middle of a run changes no decision of the pure engine."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.api.spec import PolicySpec, ResourceAmounts
from surge.decision import Decision, MetricError, Observation, PlanState, PodUsage, ScalarReading, plan
from surge.decision.checkpoint import decode, encode
from surge.decision.model import ContainerResources, OOMEvent
from tests.unit.builders import MI, NOW, pods, prom_metric, spec

UID = "uid-prop"

Tick = tuple[float, float | None, float, float, bool]  # gap, load (None: metric failed), cpu, memory, oom

ticks = st.tuples(
    st.floats(min_value=1, max_value=40),
    st.one_of(st.none(), st.floats(min_value=0, max_value=400)),
    st.floats(min_value=0, max_value=3),
    st.floats(min_value=16 * MI, max_value=2048 * MI),
    st.booleans(),
)


@st.composite
def policies(draw: st.DrawFn) -> PolicySpec:
    rules = st.fixed_dictionaries(
        {
            "stabilizationWindowSeconds": st.integers(0, 120),
            "selectPolicy": st.sampled_from(["Max", "Min"]),
            "policies": st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["Pods", "Percent"]),
                        "value": st.integers(1, 100),
                        "periodSeconds": st.integers(1, 120),
                    }
                ),
                min_size=1,
                max_size=2,
            ),
        }
    )
    horizontal: dict[str, Any] = {
        "minReplicas": draw(st.integers(1, 3)),
        "maxReplicas": draw(st.integers(4, 40)),
        "metrics": [prom_metric(average="10")],
        "behavior": {"scaleUp": draw(rules), "scaleDown": draw(rules)},
        "fallback": {"failureThreshold": draw(st.integers(1, 4)), "replicas": draw(st.integers(1, 10))},
    }
    if draw(st.booleans()):
        horizontal["predictive"] = {"lookahead": "30s", "history": "5m"}
    vertical = {"updateMode": "InPlace", "halfLife": draw(st.sampled_from(["1m", "5m", "1h"]))}
    return spec(horizontal=horizontal, vertical=vertical)


def observe(tick: Tick, replicas: int, now: float) -> Observation:
    _, load, cpu, memory, oom = tick
    count = max(replicas, 1)
    usage = {
        f"p{i}": PodUsage(now - 1, {"app": ResourceAmounts(cpu * (1 + i / 10), memory)}) for i in range(count)
    }
    return Observation(
        current_replicas=replicas,
        pods=pods(count),
        pod_metrics=usage,
        readings={"prometheus-0": MetricError("down") if load is None else ScalarReading(load)},
        containers=[
            ContainerResources("app", ResourceAmounts(0.5, 256 * MI), ResourceAmounts(1.0, 512 * MI))
        ],
        ooms=[OOMEvent("app", now - 2, memory)] if oom else [],
    )


def without_state(decision: Decision) -> Decision:
    return replace(decision, state=PlanState(), unapplied_state=PlanState())


def run(
    policy: PolicySpec, sequence: list[Tick], restore_at: int | None
) -> list[tuple[Decision, dict[str, Any]]]:
    state, replicas, now, out = PlanState(), 5, NOW, []
    for index, tick in enumerate(sequence):
        now += tick[0]
        if index == restore_at:  # what a restarted operator reads back, through JSON like the API server
            saved = json.dumps(encode(state, now - tick[0], now, policy_uid=UID, generation=1))
            state = decode(json.loads(saved), policy, policy_uid=UID, now=now).state
        decision = plan(policy, observe(tick, replicas, now), state, now)
        state = decision.state
        replicas = decision.to_replicas
        out.append((without_state(decision), encode(state, None, now, policy_uid=UID, generation=1)))
    return out


@settings(max_examples=120, deadline=None)
@given(policies(), st.lists(ticks, min_size=2, max_size=30), st.data())
def test_a_restore_in_the_middle_changes_no_decision(
    policy: PolicySpec, sequence: list[Tick], data: st.DataObject
) -> None:
    restore_at = data.draw(st.integers(1, len(sequence) - 1))
    straight = run(policy, sequence, None)
    restored = run(policy, sequence, restore_at)
    for index, ((a, state_a), (b, state_b)) in enumerate(zip(straight, restored, strict=True)):
        assert a == b, f"decision {index} differs after a restore at {restore_at}"
        assert state_a == state_b, f"state {index} differs after a restore at {restore_at}"
