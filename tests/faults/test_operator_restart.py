"""SIGKILL of the operator while it scales: decisions must survive the restart (issue 9, item 1)."""

from __future__ import annotations

import time
from collections.abc import Callable

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
    start_pods,
    wait_for_monotonic,
)
from tests.faults.series import MutableSeries, prometheus_value
from tests.support.wait import holds_for, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

DOWNTIME = 2.0  # seconds between the SIGKILL and the new process (a fast restart is the hard case)


# SIGKILL right after the first write (the hard case: no later tick ran), or 8 s into the period.
@pytest.mark.parametrize("kill_after", [0.0, 8.0], ids=["right-after-the-step", "mid-period"])
def test_sigkill_mid_scale_up_keeps_the_rate_limit_across_the_restart(
    kill_after: float,
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    period = 20
    demand = series(namespace, 2000)  # 20 replicas wanted; the policy allows +2 pods per 20 s
    start_pods(api, namespace, "web", 2)
    wait_until(
        lambda: prometheus_value(faults_cluster.prometheus_url, demand.query) == 2000,
        timeout=30,
        what="Prometheus to scrape the demand",
    )
    history = histories(namespace, "web")
    op = operators()
    op.wait_healthy()
    up = {
        "stabilizationWindowSeconds": 0,
        "policies": [{"type": "Pods", "value": 2, "periodSeconds": period}],
    }
    create_policy(api, namespace, "web", demand_policy("web", demand.query, scale_up=up))

    first = wait_until(
        lambda: next((r for r in history.records if r.replicas == 4), None),
        timeout=30,
        what="the first step 2 -> 4",
    )
    wait_for_monotonic(first.at + kill_after)
    op.kill()  # mid scale-up: 16 more pods wanted, the next +2 allowed only at first.at + 20 s
    killed = time.monotonic()
    wait_for_monotonic(killed + DOWNTIME)
    op.start()
    ready = op.wait_healthy()

    second = wait_until(
        lambda: next((r for r in history.records if r.replicas > 4), None),
        timeout=period + 30,
        what="the next step after the restart",
    )
    origin = first.at
    timeline = history.describe(origin)
    assert second.replicas == 6, f"the next step must be +2, got {timeline}"
    assert second.at >= first.at + period - 0.5, f"+2 again before the 20 s period ended: {timeline}"
    due = max(ready, first.at + period)
    assert second.at <= due + 1 + SLACK, f"next step {second.at - due:.1f}s after it was due: {timeline}"
    growth, _ = history.max_growth(period - 0.5)
    assert growth <= 2, f"more than +2 pods within 20 s across the restart: {timeline}"
    key = f"sigkill_mid_scale_up[{kill_after:.0f}s]"
    faults_cluster.measure(f"{key}.restart_to_healthy_s", round(ready - killed - DOWNTIME, 1))
    faults_cluster.measure(f"{key}.next_step_after_due_s", round(second.at - due, 1))

    rescales = [e.message for e in events(api, namespace, "web") if e.reason == "SuccessfulRescale"]
    assert sorted(rescales) == sorted(set(rescales)), f"a rescale was reported twice: {rescales}"
    status = wait_until(
        lambda: (s := policy_status(api, namespace, "web")).get("currentReplicas") == 6 and s,
        timeout=10,
        what="status after the second step",
    )
    assert status["lastDecision"]["limitedBy"] == "ScaleUpLimit", status["lastDecision"]
    assert condition(status, "ScalingLimited")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    assert_no_crash_loop(op)


def test_sigkill_inside_the_scale_down_window_does_not_scale_down_early(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    window = 30
    demand = series(namespace, 800)
    start_pods(api, namespace, "web", 8)
    wait_until(
        lambda: prometheus_value(faults_cluster.prometheus_url, demand.query) == 800,
        timeout=30,
        what="Prometheus to scrape the demand",
    )
    history = histories(namespace, "web")
    op = operators()
    op.wait_healthy()
    down = {
        "stabilizationWindowSeconds": window,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
    }
    create_policy(api, namespace, "web", demand_policy("web", demand.query, scale_down=down))
    wait_until(
        lambda: policy_status(api, namespace, "web").get("desiredReplicas") == 8,
        timeout=30,
        what="the operator to see 8 wanted",
    )

    demand.set(200)  # the load drops: 2 wanted, allowed only when 30 s of lower recommendations have passed
    dropped = wait_until(
        lambda: prometheus_value(faults_cluster.prometheus_url, demand.query) == 200 and time.monotonic(),
        timeout=30,
        interval=0.1,
        what="Prometheus to see the drop",
    )
    # The last tick that saw 800 came at most one interval (1 s) before Prometheus showed 200.
    earliest = dropped + window - 1 - 0.5
    status = wait_until(
        lambda: (
            (s := policy_status(api, namespace, "web")).get("currentMetrics", [{}])[0].get("proposedReplicas")
            == 2
            and s
        ),
        timeout=10,
        what="the operator to see the drop",
    )
    assert condition(status, "AbleToScale")["reason"] == "ScaleDownStabilized", status["conditions"]

    wait_for_monotonic(dropped + 10)  # a third of the way into the window
    op.kill()
    killed = time.monotonic()
    wait_for_monotonic(killed + DOWNTIME)
    op.start()
    ready = op.wait_healthy()
    holds_for(
        lambda: history.current() == 8,
        seconds=max(0.0, earliest - time.monotonic()),
        what="8 replicas until the window ends",
        interval=0.2,
    )
    done = wait_until(
        lambda: next((r for r in history.records if r.replicas < 8), None),
        timeout=window,
        what="the scale-down once the window ended",
    )
    timeline = history.describe(dropped)
    assert done.replicas == 2, timeline
    assert done.at >= earliest, f"scaled down {earliest - done.at:.1f}s early: {timeline}"
    assert done.at <= dropped + window + 1 + SLACK, f"scale-down late: {timeline}"
    faults_cluster.measure("sigkill_scale_down_window.scale_down_after_drop_s", round(done.at - dropped, 1))
    faults_cluster.measure(
        "sigkill_scale_down_window.restart_to_healthy_s", round(ready - killed - DOWNTIME, 1)
    )
    wait_until(
        lambda: any(
            e.reason == "SuccessfulRescale" and "New size: 2" in e.message
            for e in events(api, namespace, "web")
        ),
        timeout=10,
        what="a SuccessfulRescale Event for the scale-down",
    )
    assert_no_crash_loop(op)
