"""EngineSettings act like kube-controller-manager's HPA flags (--horizontal-pod-autoscaler-cpu-
initialization-period and --horizontal-pod-autoscaler-initial-readiness-delay)."""

from __future__ import annotations

import pytest

from surge.api.spec import Tolerance
from surge.decision import PlanState, plan
from surge.decision.horizontal import group_pods, propose, resource_utilization_replicas
from surge.decision.model import EngineSettings, Observation, PodInfo, PodsReading
from tests.unit.builders import LONG_AGO, MI, NOW, cpu_metric, pod, pods, spec, usage
from tests.unit.test_horizontal_pods import pods_metric

HPA_DEFAULTS = EngineSettings()

# Started 200 s ago, ready since 190 s ago, unready again since 100 s ago.
FLAPPED = pod("p3", ready=False, started=NOW - 200, ready_since=NOW - 100)
# Started an hour ago, became unready 20 s after it started and never became ready again.
NEVER_READY = pod("p3", ready=False, started=LONG_AGO, ready_since=LONG_AGO + 20)
# Started 60 s ago and ready since 50 s ago; its 30 s sample window began after readiness.
YOUNG_READY = pod("p3", started=NOW - 60, ready_since=NOW - 50)


def test_defaults_are_hpa_defaults() -> None:
    assert (HPA_DEFAULTS.cpu_initialization_period, HPA_DEFAULTS.initial_readiness_delay) == (300.0, 30.0)


@pytest.mark.parametrize(
    ("extra", "settings", "unready"),
    [
        # Within the initialization period an unready pod's CPU never counts...
        (FLAPPED, HPA_DEFAULTS, True),
        # ...past a shorter one, a pod that was ready once (and became unready later) counts.
        (FLAPPED, EngineSettings(cpu_initialization_period=120), False),
        # Past the period: a pod whose only readiness change fell within the initial readiness delay
        # has never been ready: unready with the default 30 s...
        (NEVER_READY, HPA_DEFAULTS, True),
        # ...but with a 10 s delay that change at 20 s was "ready, then unready": it counts.
        (NEVER_READY, EngineSettings(initial_readiness_delay=10), False),
        # A young ready pod counts; a longer window of distrust does not change that (the sample
        # was taken after readiness)...
        (YOUNG_READY, EngineSettings(cpu_initialization_period=3600), False),
        # ...while a period of 0 trusts a not-ready young pod that was ready once after its delay.
        (
            pod("p3", ready=False, started=NOW - 60, ready_since=NOW - 10),
            EngineSettings(cpu_initialization_period=0),
            False,
        ),
        (pod("p3", ready=False, started=NOW - 60, ready_since=NOW - 10), HPA_DEFAULTS, True),
    ],
)
def test_cpu_readiness_follows_the_settings(extra: PodInfo, settings: EngineSettings, unready: bool) -> None:
    metrics = {"p3": usage(cpu=2.0)}
    groups = group_pods([extra], metrics, "cpu", NOW, settings=settings)
    assert (extra.name in groups.unready) is unready
    assert groups.ready_count == (0 if unready else 1)


def _cpu_replicas(extra: PodInfo, settings: EngineSettings) -> int:
    calc = resource_utilization_replicas(
        current_replicas=4,
        target_utilization=50,
        resource="cpu",
        pods=[*pods(3), extra],
        metrics={"p0": usage(cpu=1.0), "p1": usage(cpu=1.0), "p2": usage(cpu=1.0), "p3": usage(cpu=2.0)},
        now=NOW,
        tolerance=Tolerance(),
        settings=settings,
    )
    return calc.replicas


def test_settings_change_the_cpu_proposal() -> None:
    # Unready p3 counts as 0 on the scale-up: 3.0 / 4 = 75% of 50% -> 6. Counted: 5.0 / 4 = 125% -> 10.
    assert _cpu_replicas(FLAPPED, HPA_DEFAULTS) == 6
    assert _cpu_replicas(FLAPPED, EngineSettings(cpu_initialization_period=120)) == 10
    assert _cpu_replicas(NEVER_READY, HPA_DEFAULTS) == 6
    assert _cpu_replicas(NEVER_READY, EngineSettings(initial_readiness_delay=10)) == 10


def test_plan_passes_its_settings_to_every_metric() -> None:
    policy = spec({"maxReplicas": 20, "metrics": [cpu_metric(50)]})
    obs = Observation(
        current_replicas=4,
        pods=[*pods(3), FLAPPED],
        pod_metrics={"p0": usage(cpu=1.0), "p1": usage(cpu=1.0), "p2": usage(cpu=1.0), "p3": usage(cpu=2.0)},
    )
    default = plan(policy, obs, PlanState(), NOW)
    short = plan(policy, obs, PlanState(), NOW, settings=EngineSettings(cpu_initialization_period=120))
    assert (default.proposals[0].replicas, short.proposals[0].replicas) == (6, 10)


def test_memory_and_pods_metrics_ignore_the_cpu_settings() -> None:
    # HPA applies the readiness rules to cpu only: the same flapped pod counts for memory and Pods.
    memory = {"p3": usage(memory=600 * MI)}
    for settings in (HPA_DEFAULTS, EngineSettings(cpu_initialization_period=0, initial_readiness_delay=0)):
        assert group_pods([FLAPPED], memory, "memory", NOW, settings=settings).ready_count == 1
        obs = Observation(current_replicas=1, pods=[FLAPPED], readings={"pods-0": PodsReading({"p3": 20.0})})
        assert propose(pods_metric(), obs, NOW, Tolerance(), settings=settings).replicas == 2
