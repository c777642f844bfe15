"""HPA's Pods metric (one value per pod, AverageValue target): our own table from HPA's rules.

Rules (replica_calculator.go, calcPlainMetricReplicas + groupPods with no resource):
- deleting and Failed pods are ignored; Pending pods are unready; a pod without a value is missing;
- every other pod with a value counts, Ready or not (the CPU readiness rules are for cpu only);
- ratio = truncated average of the counted values / target; within tolerance -> keep;
- missing pods count as the target on a scale-down and as 0 on a scale-up, unready pods as 0 on a
  scale-up; after those fill-ins the direction never flips and a scale-down never grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from surge.api.spec import MetricTarget, MetricTargetType, MetricType, PodsMetric, PodsMetricSpec, Tolerance
from surge.decision.horizontal import MetricCalcError, pods_average_value_replicas, propose
from surge.decision.model import MetricError, Observation, PodInfo, PodsReading, ScalarReading
from tests.unit.builders import NOW, pod, pods

TOL = Tolerance()
TARGET = 10.0


def pods_metric(target: float = TARGET) -> PodsMetricSpec:
    return PodsMetricSpec(
        name="pods-0",
        pods=PodsMetric(
            query="sum by (pod) (q)",
            target=MetricTarget(MetricTargetType.AVERAGE_VALUE, average_value=target),
        ),
    )


@dataclass
class PodsCase:
    id: str
    current: int
    values: list[float | None]  # p0..pN, Running and Ready; None: no series for that pod
    expected: int
    extra_pods: list[PodInfo] = field(default_factory=list)
    extra_values: dict[str, float] = field(default_factory=dict)
    tolerance: Tolerance = TOL
    average: float | None = None  # the reported average over the counted pods


CASES = [
    PodsCase("scale-up", 4, [20, 20, 20, 20], 8, average=20),
    PodsCase("scale-down", 4, [2, 2, 2, 2], 1, average=2),
    PodsCase("within-tolerance", 4, [10.5] * 4, 4),
    PodsCase("upper-edge-inclusive", 4, [11] * 4, 4),
    PodsCase("lower-edge-inclusive", 4, [9] * 4, 4),
    PodsCase("just-past-upper-edge", 4, [11.01] * 4, 5),  # ceil(1.101 x 4)
    PodsCase("asymmetric-up", 4, [10.6] * 4, 5, tolerance=Tolerance(scale_up=0.05, scale_down=0.5)),
    PodsCase("asymmetric-down", 4, [6] * 4, 4, tolerance=Tolerance(scale_up=0.05, scale_down=0.5)),
    # Scale-down: missing pods count as the target: (2+2+2+10)/4 = 4 -> ceil(0.4 x 4) = 2, not 1.
    PodsCase("missing-at-target-on-scale-down", 4, [2, 2, 2, None], 2, average=2),
    # Scale-up: missing pods count as 0: (12+12+12+0)/4 = 9 -> below target: the direction would flip.
    PodsCase("missing-at-zero-cancels-scale-up", 4, [12, 12, 12, None], 4),
    # One pod at 12 and three without series: plain ceil(1.2 x 1) = 2 would scale DOWN on a scale-up.
    PodsCase("missing-never-turns-scale-up-into-down", 4, [12, None, None, None], 4),
    # Scale-up with missing pods still scales: (40+40+0)/3 = 26.666 -> 26.666 (milli-truncated) x 3 -> 8.
    PodsCase("missing-at-zero-damps-scale-up", 3, [40, 40, None], 8),
    # 4 pods but /scale says 2 (a rollout surge): scale-down fill-in gives ceil(0.55 x 4) = 3 > 2: keep 2.
    PodsCase("scale-down-never-grows", 2, [1, 1, None, None], 2),
    # Pending pods count as 0 on a scale-up: 42/4 = 10.5 is within tolerance: keep (plain: ceil(4.2) = 5).
    PodsCase("pending-zero-on-scale-up", 4, [14, 14, 14], 4, [pod("p3", phase="Pending")]),
    PodsCase("pending-damps-scale-up", 4, [30, 30, 30], 9, [pod("p3", phase="Pending")]),  # 90/4 x 4
    PodsCase(
        "pending-ignored-on-scale-down",
        4,
        [2, 2],
        1,
        [pod("p2", phase="Pending"), pod("p3", phase="Pending")],
    ),
    # No CPU readiness rules: a Running pod's value counts even when it is not Ready, has no Ready
    # condition yet, or started a second ago.
    PodsCase(
        "running-not-ready-counts",
        4,
        [20, 20, 20],
        8,
        [pod("p3", ready=False, started=NOW - 1, ready_since=NOW - 1)],
        {"p3": 20},
        average=20,
    ),
    PodsCase("no-ready-condition-counts", 4, [20, 20, 20], 8, [pod("p3", ready=None)], {"p3": 20}),
    PodsCase(
        "deleting-and-failed-ignored",
        3,
        [10, 10, 10],
        3,
        [pod("gone", deleting=True), pod("dead", phase="Failed")],
        {"gone": 1000, "dead": 1000},
    ),
    # Succeeded is not ignored by HPA: with a series it counts, without one it is missing.
    PodsCase("succeeded-with-value-counts", 3, [10, 10], 6, [pod("done", phase="Succeeded")], {"done": 40}),
    PodsCase("succeeded-without-value-missing", 3, [2, 2], 2, [pod("done", phase="Succeeded")]),
    # Series of pods that are not the target's (the query matched more) are not used.
    PodsCase("foreign-series-unused", 2, [10, 10], 2, extra_values={"someone-else": 1e6}),
    # Values are milli-units and the average is truncated like Go's integer division: (10000 + 10001) / 2
    # is 10000m, exactly the target, so even a zero tolerance keeps 2 (an exact average would give 3).
    PodsCase("average-truncated", 2, [10.0, 10.001], 2, tolerance=Tolerance(0, 0), average=10.0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_pods_metric_table(case: PodsCase) -> None:
    target_pods = pods(len(case.values)) + case.extra_pods
    values = {f"p{i}": v for i, v in enumerate(case.values) if v is not None} | case.extra_values
    calc = pods_average_value_replicas(
        current_replicas=case.current,
        target_average=TARGET,
        pods=target_pods,
        values=values,
        tolerance=case.tolerance,
    )
    assert calc.replicas == case.expected
    if case.average is not None:
        assert float(calc.value) == pytest.approx(case.average)


@pytest.mark.parametrize(
    ("target_pods", "values", "error"),
    [
        ([], {"p0": 1.0}, "no pods returned by selector"),
        (pods(2, phase="Pending"), {"p0": 1.0, "p1": 1.0}, "did not receive metrics for targeted pods"),
        (pods(2), {}, "did not receive metrics for targeted pods"),
        (pods(2, deleting=True), {"p0": 1.0, "p1": 1.0}, "did not receive metrics for targeted pods"),
        (pods(2), {"p0": 1.0, "p1": float("nan")}, "pod p1: value nan is not a finite number"),
    ],
)
def test_pods_metric_errors(target_pods: list[PodInfo], values: dict[str, float], error: str) -> None:
    with pytest.raises(MetricCalcError, match=error):
        pods_average_value_replicas(
            current_replicas=2, target_average=TARGET, pods=target_pods, values=values, tolerance=TOL
        )


def test_non_finite_value_of_an_ignored_pod_is_not_used() -> None:
    calc = pods_average_value_replicas(
        current_replicas=2,
        target_average=TARGET,
        pods=[*pods(2), pod("gone", deleting=True)],
        values={"p0": 30, "p1": 30, "gone": float("inf")},
        tolerance=TOL,
    )
    assert calc.replicas == 6


def test_propose_pods_metric_status_and_detail() -> None:
    obs = Observation(
        current_replicas=4,
        pods=[*pods(3), pod("p3", phase="Pending")],
        readings={"pods-0": PodsReading({"p0": 25, "p1": 25, "p2": 25.5})},
    )
    prop = propose(pods_metric(), obs, NOW, TOL)
    assert prop.ok
    # 75.5 / 4 with the Pending pod at 0 = 18.875 -> ceil(1.8875 x 4) = 8
    assert (prop.type, prop.replicas, prop.value, prop.target) == (MetricType.PODS, 8, "25166m", "10")
    assert prop.detail == "average 25.166 per pod vs 10 target over 3 ready pod(s) (1 not ready)"


@pytest.mark.parametrize(
    ("reading", "error"),
    [
        (None, "no reading for metric pods-0"),
        (MetricError("prometheus timeout"), "prometheus timeout"),
        (ScalarReading(5.0), "expects one value per pod"),
    ],
)
def test_propose_pods_metric_failures(reading: ScalarReading | MetricError | None, error: str) -> None:
    readings = {} if reading is None else {"pods-0": reading}
    prop = propose(pods_metric(), Observation(current_replicas=2, pods=pods(2), readings=readings), NOW, TOL)
    assert not prop.ok
    assert error in prop.error
    assert prop.target == "10"


def test_propose_pods_metric_negative_values_propose_zero_not_negative() -> None:
    obs = Observation(
        current_replicas=2, pods=pods(2), readings={"pods-0": PodsReading({"p0": -10, "p1": -10})}
    )
    calc = pods_average_value_replicas(
        current_replicas=2, target_average=TARGET, pods=pods(2), values={"p0": -10, "p1": -10}, tolerance=TOL
    )
    assert calc.replicas == -2  # HPA's formula: ceil(-1 x 2)
    assert propose(pods_metric(), obs, NOW, TOL).replicas == 0


def test_pods_metric_scale_from_zero_is_an_error_not_a_proposal() -> None:
    # With no pods there are no per-pod values: like HPA, the metric fails (minReplicas 0 needs another type).
    prop = propose(
        pods_metric(), Observation(current_replicas=0, readings={"pods-0": PodsReading({})}), NOW, TOL
    )
    assert "no pods returned by selector" in prop.error
