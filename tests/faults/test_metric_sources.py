"""Prometheus and the metrics API go away: policies hold (never scale down on missing data) and recover."""

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
    policy_status,
    ready_true,
    reasons,
    start_pods,
    watched_fleet,
)
from tests.faults.series import MutableSeries, prometheus_value
from tests.integration.test_operator import cpu_policy, load_all
from tests.support.wait import holds_for, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]
SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3}


def cores(quantity: str) -> float:
    """A CPU quantity as the metrics API writes it ("150000000n", "150m", "1") in cores."""
    scale = SUFFIX.get(quantity[-1:], 1.0)
    return float(quantity[:-1] if quantity[-1:] in SUFFIX else quantity) * scale


EXTERNAL_METRIC_REASONS = {"FailedGetExternalMetric", "FailedGetPrometheusMetric"}


def test_prometheus_stopped_holds_replicas_and_recovers(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    series: Callable[[str, float], MutableSeries],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    prom = faults_cluster.prometheus_url
    demand = series(namespace, 600)
    history, op = watched_fleet(api, namespace, 2, histories, operators)
    # A fallback below the current count: with the default behaviour it is a floor, never a scale-down.
    policy = demand_policy("web", demand.query, fallback={"failureThreshold": 2, "replicas": 2})
    create_policy(api, namespace, "web", policy)
    wait_until(lambda: history.current() == 6, timeout=40, what="6 replicas before the outage")

    down_at = faults_cluster.fault("stop", "prometheus")
    status = wait_until(
        lambda: (
            (s := policy_status(api, namespace, "web")).get("consecutiveFailures", 0) >= 2
            and condition(s, "MetricsAvailable").get("status") == "False"
            and s
        ),
        timeout=15,
        what="MetricsAvailable=False after two failed evaluations",
    )
    warnings = set(reasons(api, namespace, "web", "Warning"))
    assert warnings & EXTERNAL_METRIC_REASONS, f"no Warning Event a user can read: {warnings}"
    holds_for(lambda: history.current() == 6, seconds=5, what="6 replicas while Prometheus is down")
    assert condition(status, "MetricsAvailable")["reason"] in {"FallbackActive", "AllMetricsFailed"}

    demand.set(900)
    up_at = faults_cluster.fault("start", "prometheus")
    seen = wait_until(
        lambda: prometheus_value(prom, demand.query) == 900 and time.monotonic(),
        timeout=30,
        interval=0.1,
        what="Prometheus to scrape 900 after its restart",
    )
    done = wait_until(
        lambda: next((r for r in history.records if r.replicas != 6 and r.at > down_at), None),
        timeout=20,
        what="the next decision after Prometheus came back",
    )
    timeline = history.describe(up_at)
    assert done.replicas == 9, timeline
    assert done.at <= seen + 1 + SLACK, f"{done.at - seen:.1f}s after the data came back: {timeline}"
    assert min(history.values()[1:]) >= 6, f"scaled down on missing data: {timeline}"
    faults_cluster.measure("prometheus_restart.ready_after_start_s", round(up_at - down_at, 1))
    faults_cluster.measure("prometheus_restart.decision_after_data_s", round(done.at - seen, 1))
    status = wait_until(lambda: ready_true(api, namespace, "web"), timeout=10, what="Ready after recovery")
    assert condition(status, "MetricsAvailable")["status"] == "True"
    assert status.get("consecutiveFailures", 0) == 0
    assert_no_crash_loop(op)


def test_metrics_api_unavailable_holds_replicas_and_recovers(
    faults_cluster: FaultCluster,
    api: client.ApiClient,
    namespace: str,
    operators: Callable[..., OperatorProcess],
    histories: Callable[[str, str], ScaleHistory],
) -> None:
    interval = 2
    start_pods(api, namespace, "web", 2, cpu_request="100m")
    load_all(api, namespace, "web", "50m")  # exactly at the 50% target: 2 wanted
    history = histories(namespace, "web")
    op = operators()
    op.wait_healthy()
    policy = cpu_policy("web", utilization=50, max_replicas=10)
    policy["interval"] = f"{interval}s"
    create_policy(api, namespace, "web", policy)
    wait_until(
        lambda: condition(policy_status(api, namespace, "web"), "MetricsAvailable").get("status") == "True",
        timeout=60,
        what="CPU metrics before the fault",
    )

    down_at = faults_cluster.fault("kill", "metrics-server")
    wait_until(
        lambda: (
            condition(s := policy_status(api, namespace, "web"), "MetricsAvailable").get("status") == "False"
            and s
        ),
        timeout=20,
        what="MetricsAvailable=False without the metrics API",
    )
    assert "FailedGetResourceMetric" in reasons(api, namespace, "web", "Warning")
    holds_for(lambda: history.current() == 2, seconds=3 * interval, what="2 replicas without the metrics API")

    load_all(api, namespace, "web", "150m")  # 300% of requests: 6 wanted once usage can be read again
    up_at = faults_cluster.fault("start", "metrics-server")

    def usage_visible() -> float | None:
        listing = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods"
        )
        cpus = [cores(c["usage"]["cpu"]) for p in listing["items"] for c in p["containers"]]
        return time.monotonic() if len([c for c in cpus if c >= 0.12]) >= 2 else None

    seen = wait_until(usage_visible, timeout=60, interval=0.2, what="new usage through the metrics API")
    done = wait_until(
        lambda: next((r for r in history.records if r.replicas != 2), None),
        timeout=30,
        what="the scale-up after the metrics API came back",
    )
    timeline = history.describe(up_at)
    assert done.replicas == 6, timeline
    assert done.at <= seen + interval + SLACK, f"{done.at - seen:.1f}s after usage was readable: {timeline}"
    assert min(history.values()) >= 2
    faults_cluster.measure("metrics_api_outage.serving_after_start_s", round(up_at - down_at, 1))
    faults_cluster.measure("metrics_api_outage.usage_after_start_s", round(seen - up_at, 1))
    faults_cluster.measure("metrics_api_outage.decision_after_usage_s", round(done.at - seen, 1))
    wait_until(lambda: ready_true(api, namespace, "web"), timeout=15, what="Ready after recovery")
    assert_no_crash_loop(op)
