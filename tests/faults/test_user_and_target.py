"""A person acts while the operator ticks: kubectl scale, the target deleted and recreated, the policy
deleted while pods are being resized."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.faults.conftest import FaultCluster
from tests.faults.history import ScaleHistory
from tests.faults.operator_process import OperatorProcess
from tests.faults.scenario import (
    SLACK,
    assert_no_crash_loop,
    condition,
    create_policy,
    demand_policy,
    events,
    policy_status,
    ready_true,
    reasons,
    start_pods,
    watched_fleet,
)
from tests.faults.series import MutableSeries
from tests.integration.test_operator import load_all
from tests.support.wait import holds_for, wait_until
from tests.support.workloads import deployment, ready_pods

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

GROUP, VERSION, PLURAL = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicies"


def test_user_kubectl_scale_during_ticks_is_corrected_without_conflict_errors(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    demand = series(namespace, 400)
    history, op = watched_fleet(api, namespace, 2, histories, operators)
    create_policy(api, namespace, "web", demand_policy("web", demand.query))
    wait_until(lambda: history.current() == 4, timeout=40, what="4 replicas")

    # Scale by hand at staggered moments of the 1 s tick, so some writes land between the operator's
    # read of /scale and its write.
    last = 0.0
    for offset in (0.0, 0.37, 0.74, 1.11, 1.48):
        wait_until(
            lambda: history.current() == 4,
            timeout=1 + SLACK,
            interval=0.05,
            what="the operator to correct the previous manual scale",
        )
        time.sleep(offset)  # where in the tick the person's write lands (the scenario, not a wait for state)
        faults_cluster.kubectl("scale", "-n", namespace, "deployment/web", "--replicas=9")
        last = time.monotonic()
    done = wait_until(
        lambda: history.current() == 4 and time.monotonic(),
        timeout=1 + SLACK,
        interval=0.05,
        what="4 replicas after the last manual scale",
    )
    timeline = history.describe(last)
    assert set(history.values()) <= {2, 4, 9}, f"a value nobody asked for: {timeline}"
    assert min(history.values()[1:]) >= 4, f"below the policy's answer: {timeline}"
    faults_cluster.measure("kubectl_scale.corrected_after_s", round(done - last, 1))
    holds_for(lambda: history.current() == 4, seconds=3, what="4 replicas after the manual scales")
    failed = [e.message for e in events(api, namespace, "web") if e.reason == "FailedRescale"]
    assert not failed, f"a 409 must be re-read and decided again, not reported: {failed}"
    assert wait_until(lambda: ready_true(api, namespace, "web"), timeout=10, what="Ready")
    assert_no_crash_loop(op)


def test_target_deleted_and_recreated(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    demand = series(namespace, 500)
    history, op = watched_fleet(api, namespace, 2, histories, operators)
    create_policy(api, namespace, "web", demand_policy("web", demand.query))
    wait_until(lambda: history.current() == 5, timeout=40, what="5 replicas")

    apps = client.AppsV1Api(api)
    apps.delete_namespaced_deployment("web", namespace)
    status = wait_until(
        lambda: (
            condition(s := policy_status(api, namespace, "web"), "AbleToScale").get("status") == "False" and s
        ),
        timeout=10,
        what="AbleToScale=False once the target is gone",
    )
    assert condition(status, "AbleToScale")["reason"] == "FailedGetScale", status["conditions"]
    assert condition(status, "Ready")["status"] == "False"
    assert "FailedGetScale" in reasons(api, namespace, "web", "Warning")

    apps.create_namespaced_deployment(namespace, deployment("web", replicas=1))
    recreated = time.monotonic()
    done = wait_until(
        lambda: next((r for r in history.records if r.at > recreated and r.replicas > 1), None),
        timeout=20,
        what="the recreated target to be scaled",
    )
    timeline = history.describe(recreated)
    assert done.replicas == 5, timeline
    assert done.at <= recreated + 1 + SLACK, timeline
    assert max(r.replicas for r in history.records if r.at > recreated) == 5, f"overshoot: {timeline}"
    faults_cluster.measure("target_recreated.scaled_after_s", round(done.at - recreated, 1))
    wait_until(lambda: ready_true(api, namespace, "web"), timeout=10, what="Ready after the target is back")
    assert_no_crash_loop(op)


def _requests(api: client.ApiClient, namespace: str, app: str) -> dict[str, str]:
    return {
        p.metadata.name: p.spec.containers[0].resources.requests["cpu"]
        for p in ready_pods(client.CoreV1Api(api), namespace, app)
    }


def _millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def vertical_policy(target: str) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "interval": "1s",
        "vertical": {
            "updateMode": "InPlace",
            "halfLife": "1m",
            "containerPolicies": [
                {
                    "containerName": "app",
                    "controlledResources": ["cpu"],
                    "minAllowed": {"cpu": "50m"},
                    "maxAllowed": {"cpu": "2"},
                },
            ],
        },
    }


def test_policy_deleted_mid_resize(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    start_pods(api, namespace, "big", 6, cpu_request="100m")
    load_all(api, namespace, "big", "600m")  # six times the request: the recommender grows it
    demand = series(namespace, 200)
    start_pods(api, namespace, "canary", 1)
    canary = histories(namespace, "canary")
    op = operators()
    op.wait_healthy()
    create_policy(api, namespace, "canary", demand_policy("canary", demand.query))
    create_policy(api, namespace, "big", vertical_policy("big"))
    before = _requests(api, namespace, "big")
    wait_until(
        lambda: _requests(api, namespace, "big") != before,
        timeout=90,
        interval=0.1,
        what="the first in-place resize",
    )

    started = time.monotonic()
    deleted = faults_cluster.kubectl("delete", "asp", "big", "-n", namespace, "--timeout=20s", check=False)
    took = time.monotonic() - started
    assert deleted.returncode == 0, deleted.stderr
    assert took < 5, f"deleting the policy took {took:.1f}s"
    faults_cluster.measure("policy_deleted_mid_resize.delete_s", round(took, 1))
    frozen = _requests(api, namespace, "big")
    holds_for(
        lambda: _requests(api, namespace, "big") == frozen,
        seconds=4,
        what="no resize after the policy is gone",
    )
    assert all(_millicores(v) >= 100 for v in frozen.values()), f"a request shrank: {frozen}"

    demand.set(400)  # the other policy keeps deciding
    wait_until(lambda: canary.current() == 4, timeout=1 + SLACK + 6, what="the canary policy to scale")
    assert_no_crash_loop(op)
