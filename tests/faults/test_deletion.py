"""With the operator gone, deleting a policy or its namespace completes within seconds (no finalizer wait)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kubernetes import client

from tests.faults.conftest import FaultCluster
from tests.faults.operator_process import OperatorProcess
from tests.faults.scenario import create_policy, demand_policy, policy_status, start_pods
from tests.faults.series import MutableSeries
from tests.support.wait import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]


def test_deletions_complete_with_the_operator_stopped(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespaces: Callable[[], str],
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
) -> None:
    first, second = namespaces(), namespaces()
    for ns in (first, second):
        demand = series(ns, 300)
        start_pods(api, ns, "web", 1)
        create_policy(api, ns, "web", demand_policy("web", demand.query))
    op = operators()
    op.wait_healthy()
    for ns in (first, second):  # the operator has handled both policies (a finalizer would be on them now)
        wait_until(
            lambda ns=ns: policy_status(api, ns, "web").get("observedGeneration"),
            timeout=30,
            what=f"status of {ns}/web",
        )
    op.kill()

    started = time.monotonic()
    result = faults_cluster.kubectl("delete", "asp", "web", "-n", first, "--timeout=30s", check=False)
    took = time.monotonic() - started
    assert result.returncode == 0, f"kubectl delete asp failed after {took:.1f}s: {result.stderr}"
    assert took < 5, f"kubectl delete asp took {took:.1f}s with the operator stopped"
    faults_cluster.measure("operator_stopped.delete_policy_s", round(took, 1))

    core = client.CoreV1Api(api)
    started = time.monotonic()
    core.delete_namespace(second)

    def gone() -> bool:
        try:
            core.read_namespace(second)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_until(gone, timeout=60, interval=0.2, what=f"namespace {second} to be deleted")
    took = time.monotonic() - started
    faults_cluster.measure("operator_stopped.delete_namespace_s", round(took, 1))
    assert took < 30, f"deleting a namespace with a policy took {took:.1f}s with the operator stopped"
