"""kube-apiserver and etcd die and come back: the operator rides it out and decides right away."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kubernetes import client

from tests.faults.conftest import FaultCluster
from tests.faults.history import ScaleHistory
from tests.faults.operator_process import OperatorProcess
from tests.faults.scenario import (
    SLACK,
    assert_no_crash_loop,
    create_policy,
    demand_policy,
    policy_status,
    ready_true,
    wait_for_monotonic,
    watched_fleet,
)
from tests.faults.series import MutableSeries, prometheus_value
from tests.support.wait import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

INTERVAL = 2.0
OUTAGE = 4.0  # kept short: kube-controller-manager and kube-scheduler exit after 10 s without renewing


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_component_killed_and_restarted(
    component: str,
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    prom = faults_cluster.prometheus_url
    demand = series(namespace, 400)
    history, op = watched_fleet(api, namespace, 2, histories, operators)
    create_policy(api, namespace, "web", demand_policy("web", demand.query, interval=f"{INTERVAL:.0f}s"))
    wait_until(lambda: history.current() == 4, timeout=40, what="4 replicas before the fault")
    wait_until(lambda: ready_true(api, namespace, "web"), timeout=15, what="Ready before the fault")

    down_at = faults_cluster.fault("kill", component)
    demand.set(700)  # more demand arrives during the outage: 7 wanted
    wait_until(lambda: prometheus_value(prom, demand.query) == 700, timeout=30, what="Prometheus sees 700")
    wait_for_monotonic(down_at + OUTAGE)
    assert op.alive(), f"the operator exited during the {component} outage:\n{op.tail()}"
    up_at = faults_cluster.fault("start", component)
    recovered = datetime.now(UTC)

    done = wait_until(
        lambda: next((r for r in history.records if r.at > down_at and r.replicas != 4), None),
        timeout=60,
        what=f"the next decision after {component} came back",
    )
    timeline = history.describe(up_at)
    assert done.replicas == 7, f"the next decision must be 7: {timeline}"
    assert done.at <= up_at + INTERVAL + SLACK, f"{done.at - up_at:.1f}s after recovery: {timeline}"
    assert min(history.values()[1:]) >= 4, f"scaled down during the outage: {timeline}"
    assert max(history.values()) <= 7, f"overshoot: {timeline}"
    faults_cluster.measure(f"{component}_restart.outage_s", round(up_at - down_at, 1))
    faults_cluster.measure(f"{component}_restart.decision_after_recovery_s", round(done.at - up_at, 1))

    wait_until(
        lambda: (s := ready_true(api, namespace, "web")) and s["lastDecision"]["to"] == 7,
        timeout=15,
        what="Ready and lastDecision -> 7 after recovery",
    )
    wait_until(
        lambda: policy_status(api, namespace, "web")["currentReplicas"] == 7, timeout=10, what="status"
    )
    faults_cluster.settle_control_plane(since=recovered)
    # kopf may log its own reconnects; a traceback per failed tick is what must not happen.
    assert_no_crash_loop(op, max_tracebacks=2)
    assert time.monotonic() - up_at < 60
