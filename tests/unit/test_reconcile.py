"""One tick (`reconcile_once`) driven through in-memory ports: every path and each partial failure.

In the spirit of HPA's horizontal_test.go: a table of cases, each a world (target, pods, metrics, status)
and what a tick must do in it: the writes, the Events, the conditions and the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from surge.actuation.actuator import ActuationError
from surge.actuation.target import TargetRef
from surge.api.spec import ResourceAmounts
from surge.api.status import INT32_MAX
from surge.decision.model import PodUsage
from surge.metrics.types import MetricUnavailable
from surge.reconcile import PAUSE_ANNOTATION, PolicyMemory, TickResult, reconcile_once
from tests.unit.fakes import NOW, World, condition, raw_pod

PLAYERS = "sum(players)"
USED, CAPACITY = "sum(used)", "sum(capacity)"


def policy_spec(*metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
        "interval": "10s",
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": 20,
            "metrics": list(metrics) or [prom()],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
    }
    spec.update(extra)
    return spec


def prom(query: str = PLAYERS, average: str = "10") -> dict[str, Any]:
    return {
        "type": "Prometheus",
        "prometheus": {"query": query, "target": {"type": "AverageValue", "averageValue": average}},
    }


def buffer() -> dict[str, Any]:
    return {"type": "Buffer", "buffer": {"usedQuery": USED, "capacityQuery": CAPACITY, "size": "10"}}


def cpu(utilization: int = 50) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}},
    }


def five_busy_pods(w: World) -> None:
    w.pods.raw = [raw_pod(f"p{i}") for i in range(5)]
    w.pod_metrics.usage = {
        f"p{i}": PodUsage(NOW - 5, {"app": ResourceAmounts(cpu=1.0, memory=100.0)}) for i in range(5)
    }


def nothing(w: World) -> None:
    return None


@dataclass
class Case:
    name: str
    arrange: Callable[[World], None] = nothing
    spec: dict[str, Any] = field(default_factory=policy_spec)
    annotations: dict[str, str] = field(default_factory=dict)
    conflicts: tuple[str, ...] = ()
    # expectations
    outcome: str = "ok"
    writes: list[int] = field(default_factory=list)  # replicas written to /scale, in order
    events: list[str] = field(default_factory=list)  # reasons, in order
    ready: tuple[str, str] = ("True", "Reconciled")
    other_conditions: dict[str, tuple[str, str]] = field(default_factory=dict)
    desired: int | None = None


def players(value: float | Exception) -> Callable[[World], None]:
    def arrange(w: World) -> None:
        w.prometheus.answers[PLAYERS] = value

    return arrange


def metric_down(w: World) -> None:
    w.prometheus.answers[PLAYERS] = MetricUnavailable("FailedGetPrometheusMetric", "Prometheus unreachable")


def pods_fail(w: World) -> None:
    w.pods.error = MetricUnavailable("FailedGetPods", "API down")


def pod_metrics_fail(w: World) -> None:
    w.pod_metrics.error = MetricUnavailable("FailedGetResourceMetric", "metrics-server down")


def scale_write_refused(w: World) -> None:
    w.scale.write_error = ActuationError("FailedRescale", "403 forbidden")


def events_fail(w: World) -> None:
    w.events.fail = True


def both(*steps: Callable[[World], None]) -> Callable[[World], None]:
    def arrange(w: World) -> None:
        for step in steps:
            step(w)

    return arrange


CASES = [
    Case(
        "scale up on a Prometheus metric", players(100), writes=[10], events=["SuccessfulRescale"], desired=10
    ),
    Case("steady: no write, no Event", players(50), desired=5),
    Case("scale down", players(20), writes=[2], events=["SuccessfulRescale"], desired=2),
    Case(
        "a failed Prometheus metric: the same reason in the Event and the condition",
        metric_down,
        events=["FailedGetExternalMetric"],
        other_conditions={"ScalingActive": ("False", "FailedGetExternalMetric")},
        desired=5,
    ),
    Case(
        "a query answering a string is a failed metric, not a failed tick",
        players(ValueError("could not convert string to float: 'lots'")),
        events=["FailedGetExternalMetric"],
        other_conditions={"ScalingActive": ("False", "FailedGetExternalMetric")},
        desired=5,
    ),
    Case(
        "a failed Buffer metric says FailedGetExternalMetric everywhere",
        lambda w: w.prometheus.answers.update({USED: 10.0}),  # the capacity query has no data
        spec=policy_spec(buffer()),
        events=["FailedGetExternalMetric"],
        other_conditions={"ScalingActive": ("False", "FailedGetExternalMetric")},
    ),
    Case(
        "Buffer metric scales",
        lambda w: w.prometheus.answers.update({USED: 90.0, CAPACITY: 10.0}),
        spec=policy_spec(buffer()),
        writes=[10],  # (90 used + 10 free) / 10 per replica
        events=["SuccessfulRescale"],
        desired=10,
    ),
    Case(
        "CPU metric scales up",
        five_busy_pods,
        spec=policy_spec(cpu(50)),
        writes=[10],
        events=["SuccessfulRescale"],
    ),
    Case(
        "pods cannot be listed",
        both(five_busy_pods, pods_fail),
        spec=policy_spec(cpu(50)),
        events=["FailedGetResourceMetric"],
        other_conditions={"ScalingActive": ("False", "FailedGetResourceMetric")},
        desired=5,
    ),
    Case(
        "pod metrics cannot be read",
        both(five_busy_pods, pod_metrics_fail),
        spec=policy_spec(cpu(50)),
        events=["FailedGetResourceMetric"],
        other_conditions={"MetricsAvailable": ("False", "AllMetricsFailed")},
        desired=5,
    ),
    Case(
        "one of two metrics fails: the other still scales up",
        both(five_busy_pods, metric_down),
        spec=policy_spec(cpu(50), prom()),
        writes=[10],
        events=["SuccessfulRescale", "FailedGetExternalMetric"],
        other_conditions={"MetricsAvailable": ("False", "SomeMetricsFailed")},
    ),
    Case(
        "target missing",
        lambda w: setattr(w.scale, "exists", False),
        outcome="no-target",
        events=["FailedGetScale"],
        ready=("False", "FailedGetScale"),
        other_conditions={"AbleToScale": ("False", "FailedGetScale")},
    ),
    Case(
        "target kind without /scale",
        spec=policy_spec(scaleTargetRef={"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "arena"}),
        outcome="no-target",
        events=["FailedGetScale"],
        ready=("False", "FailedGetScale"),
    ),
    Case(
        "another autoscaler on the target: no action",
        players(100),
        conflicts=("HorizontalPodAutoscaler arena also scales Deployment/arena",),
        outcome="conflict",
        events=["ConflictingAutoscaler"],
        ready=("False", "ConflictingAutoscaler"),
        other_conditions={"Conflict": ("True", "ConflictingAutoscaler")},
    ),
    Case(
        "DryRun reports and never writes",
        players(100),
        spec=policy_spec(mode="DryRun"),
        events=["DryRunRescale"],
        ready=("True", "DryRun"),
        desired=10,
    ),
    Case(
        "pause annotation reports and never writes",
        players(100),
        annotations={PAUSE_ANNOTATION: "true"},
        events=["DryRunRescale"],
        ready=("False", "Paused"),
        desired=10,
    ),
    Case(
        "invalid spec",
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
            "interval": "-1s",
        },
        outcome="invalid",
        events=["InvalidSpec"],
        ready=("False", "InvalidSpec"),
    ),
    Case(
        "the /scale write is refused",
        both(players(100), scale_write_refused),
        outcome="error",
        writes=[10],
        events=["FailedRescale"],
        ready=("False", "FailedRescale"),
        other_conditions={"AbleToScale": ("False", "FailedRescale")},
    ),
    Case(
        "the event sink fails: the tick still scales and reports in status",
        both(players(100), events_fail),
        writes=[10],
        desired=10,
    ),
    Case(
        "a proposal beyond int32 never makes the status unwritable",
        players(1e300),
        spec=policy_spec(prom(average="1"))
        | {"horizontal": {"minReplicas": 1, "maxReplicas": 10000, "metrics": [prom(average="1")]}},
        writes=[10],  # HPA's default scale-up rate: +4 pods or +100% per 15 s
        events=["SuccessfulRescale"],
        other_conditions={"ScalingLimited": ("True", "ScaleUpLimit")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_one_tick(case: Case) -> None:
    w = World()
    case.arrange(w)
    memory = PolicyMemory()

    def conflicts_of(namespace: str, ref: TargetRef, policy_uid: str) -> list[str]:
        return list(case.conflicts)

    result = asyncio.run(
        reconcile_once(w.deps(), w.policy(case.spec, annotations=case.annotations), memory, conflicts_of)
    )

    assert result.outcome == case.outcome
    assert [replicas for replicas, _ in w.scale.writes] == case.writes
    assert result.scaled is (bool(case.writes) and case.outcome == "ok")
    assert w.events.reasons() == ([] if w.events.fail else case.events)
    status = w.status.status
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == case.ready
    for type_, (state, reason) in case.other_conditions.items():
        got = condition(status, type_)
        assert (got["status"], got["reason"]) == (state, reason), got
    if case.desired is not None:
        assert status["desiredReplicas"] == case.desired
    for metric in status.get("currentMetrics", []):
        assert 0 <= metric.get("proposedReplicas", 0) <= INT32_MAX
        assert len(metric["value"]) <= 64


def run(w: World, spec: dict[str, Any], memory: PolicyMemory, **kwargs: Any) -> TickResult:
    return asyncio.run(reconcile_once(w.deps(), w.policy(spec, **kwargs), memory))


# --- optimistic concurrency ---------------------------------------------------------------------------


def test_scale_write_409_rereads_and_decides_again_on_the_new_count() -> None:
    w = World()
    w.prometheus.answers[PLAYERS] = 100.0  # 10 replicas needed
    w.scale.conflicts = [12]  # a user scales to 12 between our read and our write
    result = run(w, policy_spec(), PolicyMemory())
    # First write based on rv 1 is refused; /scale is read again (12 replicas, rv 2): the metric still says
    # 10 per... 100 / 12 = 8.3 per replica vs 10 -> 10 replicas: scale 12 -> 10, based on rv 2.
    assert w.scale.writes == [(10, "1"), (10, "2")]
    assert w.scale.reads == 2
    assert result.outcome == "ok"
    assert result.scaled
    assert result.decision is not None
    assert (result.decision.from_replicas, result.decision.to_replicas) == (12, 10)
    assert w.status.status["currentReplicas"] == 12


def test_scale_write_409_then_nothing_to_do_writes_nothing_more() -> None:
    w = World()
    w.prometheus.answers[PLAYERS] = 100.0
    w.scale.conflicts = [10]  # someone already set what we wanted
    result = run(w, policy_spec(), PolicyMemory())
    assert w.scale.writes == [(10, "1")]
    assert result.outcome == "ok"
    assert not result.scaled


def test_scale_write_409_twice_is_decided_again_soon_without_a_warning() -> None:
    # A busy target (a controller's status updates move a Deployment's resourceVersion) is not a failure a
    # person must act on (the fault suite saw a FailedRescale Warning for a user's `kubectl scale`).
    w = World()
    w.prometheus.answers[PLAYERS] = 100.0
    w.scale.conflicts = [7, 8]
    memory = PolicyMemory()
    result = run(w, policy_spec(), memory)
    assert len(w.scale.writes) == 2  # decided again once, not in a loop
    assert result.outcome == "ok"
    assert result.next_in == 1.0
    assert not result.scaled
    assert "FailedRescale" not in w.events.reasons()
    assert not memory.state.behavior.events  # the scale did not happen: nothing recorded


def test_status_writes_carry_the_resource_version_and_follow_our_own_writes() -> None:
    w = World()
    w.prometheus.answers[PLAYERS] = 100.0
    memory = PolicyMemory()
    spec = policy_spec()
    obj = w.policy(spec)  # the loop's view: rv 10
    asyncio.run(reconcile_once(w.deps(), obj, memory))
    assert w.status.writes[-1][1] == "10"
    w.prometheus.answers[PLAYERS] = 150.0  # the status changes again next tick
    w.clock.now += 10
    asyncio.run(reconcile_once(w.deps(), obj, memory))  # the watch has not delivered our write yet
    assert [rv for _, rv in w.status.writes] == ["10", "11"]


def test_status_409_skips_the_write_and_never_clobbers() -> None:
    w = World()
    w.prometheus.answers[PLAYERS] = 100.0
    w.status.fail = [409]
    memory = PolicyMemory()
    result = run(w, policy_spec(), memory)
    assert result.outcome == "ok"
    assert w.status.writes == []
    assert memory.written_status is None  # the next tick compares with what it then reads
    w.clock.now += 10
    run(w, policy_spec(), memory)
    assert len(w.status.writes) == 1


def test_status_404_means_the_policy_is_gone() -> None:
    w = World()
    w.prometheus.answers[PLAYERS] = 50.0
    w.status.fail = [404]
    assert run(w, policy_spec(), PolicyMemory()).outcome == "gone"


def test_a_failed_status_write_leaves_an_event_and_is_retried() -> None:
    w = World()
    w.prometheus.answers[PLAYERS] = 50.0
    w.status.fail = [500]
    memory = PolicyMemory()
    assert run(w, policy_spec(), memory).outcome == "ok"
    assert w.events.reasons() == ["FailedUpdateStatus"]
    w.clock.now += 10
    run(w, policy_spec(), memory)
    assert w.status.status["desiredReplicas"] == 5


# --- failures that are nobody's fault -----------------------------------------------------------------


def test_an_unexpected_failure_backs_off_and_reports_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = World()
    w.scale.read_error = ConnectionResetError("connection reset by peer")
    memory = PolicyMemory()
    spec = policy_spec()
    with caplog.at_level(logging.WARNING, logger="surge.reconcile"):
        waits = [run(w, spec, memory) for _ in range(6)]
    assert [r.outcome for r in waits] == ["error"] * 6
    assert [r.next_in for r in waits] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # capped at the interval
    ready = condition(w.status.status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InternalError")
    assert "ConnectionResetError" in ready["message"]
    assert "InternalError" in w.events.reasons()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 6
    assert all(r.exc_info is None for r in failures)  # one line each, no traceback
    w.scale.read_error = None
    w.prometheus.answers[PLAYERS] = 50.0
    recovered = run(w, spec, memory)
    assert recovered.outcome == "ok"
    assert recovered.next_in > 9
    assert memory.consecutive_errors == 0


def test_cancellation_is_not_swallowed() -> None:
    w = World()
    w.scale.read_error = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        run(w, policy_spec(), PolicyMemory())


def test_a_cancelled_policy_never_cancels_the_shared_listing_of_another() -> None:
    """Two policies in one namespace wait for one pod LIST; the first is cancelled (deleted) meanwhile."""
    w = World()
    five_busy_pods(w)
    w.pods.gate = asyncio.Event()
    spec = policy_spec(cpu(50))

    async def scenario() -> TickResult:
        deps = w.deps()
        first = asyncio.create_task(reconcile_once(deps, w.policy(spec, name="a"), PolicyMemory()))
        second = asyncio.create_task(reconcile_once(deps, w.policy(spec, name="b"), PolicyMemory()))
        for _ in range(20):  # both reach the shared LIST
            await asyncio.sleep(0)
        assert w.pods.lists == 1
        first.cancel()
        for _ in range(5):
            await asyncio.sleep(0)
        assert w.pods.gate is not None
        w.pods.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    result = asyncio.run(scenario())
    assert result.outcome == "ok"
    assert w.scale.writes == [(10, "1")]
    assert w.pods.lists == 1


# --- vertical: actuation as a plan --------------------------------------------------------------------


def vertical_spec(mode: str) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
        "interval": "10s",
        "vertical": {
            "updateMode": mode,
            "containerPolicies": [
                {"containerName": "app", "controlledResources": ["cpu"], "minAllowed": {"cpu": "2"}}
            ],
        },
    }


def vertical_world(created: list[float]) -> World:
    w = World()
    w.pods.raw = [raw_pod(f"p{i}", created=t) for i, t in enumerate(created)]
    w.pods.raw.append(raw_pod("leaving", deleting=True))
    w.pods.raw.append(raw_pod("sized", cpu="2"))
    w.pod_metrics.usage = {
        p["metadata"]["name"]: PodUsage(NOW - 5, {"app": ResourceAmounts(cpu=0.9, memory=1e8)})
        for p in w.pods.raw
    }
    w.templates.spec = {
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}}]
    }
    return w


def resized_pods(w: World) -> list[str]:
    return [pod for pod, _ in w.actuator.resizes]


def test_in_place_resizes_each_pod_once_and_skips_deleting_and_already_sized_pods() -> None:
    w = vertical_world([NOW - 3600, NOW - 3600])
    result = run(w, vertical_spec("InPlace"), PolicyMemory())
    assert result.outcome == "ok"
    assert resized_pods(w) == ["p0", "p1"]
    assert w.actuator.resizes[0][1] == {"app": {"requests": {"cpu": "2", "memory": "512Mi"}}}
    assert w.actuator.templates == []
    assert "SuccessfulResize" in w.events.reasons()


def test_in_place_or_recreate_falls_back_to_the_template_when_a_resize_is_refused() -> None:
    w = vertical_world([NOW - 3600, NOW - 3600])
    w.actuator.refuse_resize = True
    run(w, vertical_spec("InPlaceOrRecreate"), PolicyMemory())
    assert w.actuator.templates == [{"app": {"requests": {"cpu": "2", "memory": "512Mi"}}}]
    assert w.events.reasons().count("FailedResize") == 1  # stopped after the template took over
    assert "SuccessfulResize" in w.events.reasons()


def test_recreate_patches_the_template_only() -> None:
    w = vertical_world([NOW - 3600])
    run(w, vertical_spec("Recreate"), PolicyMemory())
    assert resized_pods(w) == []
    assert len(w.actuator.templates) == 1


def test_initial_without_history_resizes_no_existing_pod() -> None:
    """A restart without a checkpoint: pods that already ran are left alone."""
    w = vertical_world([NOW - 3600, NOW - 1])
    memory = PolicyMemory()
    run(w, vertical_spec("Initial"), memory)
    assert resized_pods(w) == []
    w.pods.raw.append(raw_pod("new", created=NOW + 5))
    w.clock.now += 10
    run(w, vertical_spec("Initial"), memory)
    assert resized_pods(w) == ["new"]  # only the pod created after the first tick


def test_initial_with_history_resizes_pods_created_since_the_last_tick() -> None:
    w = vertical_world([NOW - 3600, NOW - 5])
    memory = PolicyMemory(last_tick=NOW - 10)  # restored from a checkpoint
    run(w, vertical_spec("Initial"), memory)
    assert resized_pods(w) == ["p1"]


def test_dry_run_vertical_writes_nothing() -> None:
    w = vertical_world([NOW - 3600])
    run(w, vertical_spec("InPlace") | {"mode": "DryRun"}, PolicyMemory())
    assert w.actuator.resizes == []
    assert w.actuator.templates == []
