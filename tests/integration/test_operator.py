"""The operator against the real local control plane: each test asserts object state the API server holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from tests.conftest import Testbed
from tests.support.exporter import loopback_series
from tests.support.wait import holds_for, wait_until
from tests.support.workloads import deployment, ready_pods, set_usage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GROUP, VERSION, PLURAL = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicies"
FAST_DOWN = {
    "scaleDown": {
        "stabilizationWindowSeconds": 5,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
    }
}


def create_policy(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AutoScalePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def policy_status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    status: dict[str, Any] = obj.get("status") or {}
    return status


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def replicas(api: client.ApiClient, namespace: str, name: str) -> int:
    return int(client.AppsV1Api(api).read_namespaced_deployment(name, namespace).spec.replicas)


def events(api: client.ApiClient, namespace: str, policy: str) -> list[client.CoreV1Event]:
    found = (
        client.CoreV1Api(api)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={policy}")
        .items
    )
    return [e for e in found if e.involved_object.kind == "AutoScalePolicy"]


def event_reasons(api: client.ApiClient, namespace: str, policy: str) -> set[str]:
    return {e.reason for e in events(api, namespace, policy)}


def cpu_policy(
    target: str, *, utilization: int = 50, mode: str = "Active", max_replicas: int = 6
) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "mode": mode,
        "interval": "1s",
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": utilization},
                    },
                }
            ],
            "behavior": FAST_DOWN,
        },
    }


def start_pods(
    api: client.ApiClient, namespace: str, name: str, count: int, **kwargs: Any
) -> list[client.V1Pod]:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment(name, replicas=count, **kwargs))
    core = client.CoreV1Api(api)
    return wait_until(
        lambda: len(p := ready_pods(core, namespace, name)) == count and p, timeout=60, what=f"{count} pods"
    )


def load_all(api: client.ApiClient, namespace: str, app: str, cpu: str) -> None:
    core = client.CoreV1Api(api)
    for pod in ready_pods(core, namespace, app):
        set_usage(core, namespace, pod.metadata.name, cpu=cpu, memory="40Mi")


def test_cpu_policy_scales_up_on_usage_and_back_down_after_stabilization(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str
) -> None:
    start_pods(k8s_api, namespace, "web", 2, cpu_request="100m")
    load_all(k8s_api, namespace, "web", "200m")  # 200% of requests against a 50% target
    create_policy(k8s_api, namespace, "web", cpu_policy("web"))

    wait_until(lambda: replicas(k8s_api, namespace, "web") > 2, timeout=90, what="scale-up")
    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "web")).get("lastScaleTime") and s,
        timeout=30,
        what="status",
    )
    assert status["desiredReplicas"] > 2
    assert status["currentMetrics"][0]["name"] == "cpu"
    assert condition(status, "ScalingActive")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    assert "SuccessfulRescale" in event_reasons(k8s_api, namespace, "web")

    load_all(k8s_api, namespace, "web", "5m")  # load gone: every pod, old and new, nearly idle
    wait_until(
        lambda: replicas(k8s_api, namespace, "web") == 1, timeout=120, what="scale-down to minReplicas"
    )
    status = policy_status(k8s_api, namespace, "web")
    assert status["lastDecision"]["to"] <= status["lastDecision"]["from"]


def test_dry_run_reports_but_never_changes_replicas(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str
) -> None:
    start_pods(k8s_api, namespace, "web", 2, cpu_request="100m")
    load_all(k8s_api, namespace, "web", "300m")
    create_policy(k8s_api, namespace, "dry", cpu_policy("web", mode="DryRun"))

    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "dry")).get("desiredReplicas", 0) > 2 and s,
        timeout=90,
        what="a reported scale-up",
    )
    assert condition(status, "Ready")["reason"] == "DryRun"
    wait_until(
        lambda: "DryRunRescale" in event_reasons(k8s_api, namespace, "dry"), timeout=30, what="DryRun event"
    )
    # Several more ticks (1 s interval) must leave the Deployment alone.
    holds_for(lambda: replicas(k8s_api, namespace, "web") == 2, seconds=6, what="replicas == 2 in DryRun")


@pytest.fixture
def players_exporter(testbed: Testbed, namespace: str) -> Iterator[str]:
    """Serves surge_test_players{namespace=...} 450 on loopback and registers it with Prometheus."""
    series = f'surge_test_players{{namespace="{namespace}"}} 450\n'
    with loopback_series(testbed.targets_dir, f"operator-{namespace}", series):
        yield f'sum(surge_test_players{{namespace="{namespace}"}})'


def prometheus_policy(target: str, query: str, per_replica: str = "100") -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "interval": "1s",
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Prometheus",
                    "prometheus": {
                        "query": query,
                        "target": {"type": "AverageValue", "averageValue": per_replica},
                    },
                }
            ],
        },
    }


def test_prometheus_policy_scales_on_a_loopback_series(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str, players_exporter: str
) -> None:
    start_pods(k8s_api, namespace, "arena", 1)
    create_policy(k8s_api, namespace, "players", prometheus_policy("arena", players_exporter))
    # 450 players at 100 per replica -> 5 replicas (reached in one step: +4 pods per 15 s allowed).
    wait_until(lambda: replicas(k8s_api, namespace, "arena") == 5, timeout=90, what="5 replicas")
    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "players")).get("currentReplicas") == 5 and s,
        timeout=30,
        what="status to catch up",
    )
    assert status["currentMetrics"][0]["proposedReplicas"] == 5
    assert condition(status, "MetricsAvailable")["status"] == "True"


def test_broken_query_and_missing_target_become_conditions_and_events_while_others_keep_working(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str, players_exporter: str
) -> None:
    start_pods(k8s_api, namespace, "arena", 1)
    start_pods(k8s_api, namespace, "lobby", 1)
    create_policy(k8s_api, namespace, "broken", prometheus_policy("lobby", "sum(rate(surge_test_players[1m]"))
    create_policy(k8s_api, namespace, "orphan", prometheus_policy("no-such-deployment", players_exporter))
    create_policy(k8s_api, namespace, "good", prometheus_policy("arena", players_exporter))

    broken = wait_until(
        lambda: (
            condition(s := policy_status(k8s_api, namespace, "broken"), "ScalingActive").get("status")
            == "False"
            and s
        ),
        timeout=60,
        what="ScalingActive=False on the broken query",
    )
    assert "parse error" in condition(broken, "MetricsAvailable")["message"]
    wait_until(
        lambda: "FailedGetExternalMetric" in event_reasons(k8s_api, namespace, "broken"),
        timeout=30,
        what="metric event",
    )
    orphan = wait_until(
        lambda: (
            condition(s := policy_status(k8s_api, namespace, "orphan"), "AbleToScale").get("status")
            == "False"
            and s
        ),
        timeout=60,
        what="AbleToScale=False on the missing target",
    )
    assert condition(orphan, "AbleToScale")["reason"] == "FailedGetScale"
    assert "no-such-deployment" in condition(orphan, "AbleToScale")["message"]
    wait_until(
        lambda: "FailedGetScale" in event_reasons(k8s_api, namespace, "orphan"),
        timeout=30,
        what="target event",
    )
    # The operator did not stop serving: the healthy policy scales its target.
    wait_until(lambda: replicas(k8s_api, namespace, "arena") == 5, timeout=90, what="healthy policy to act")
    assert replicas(k8s_api, namespace, "lobby") == 1  # a failed metric never scales


def test_vertical_in_place_resizes_pods_without_replacing_them(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str
) -> None:
    pods = start_pods(k8s_api, namespace, "game", 2, cpu_request="100m", memory_request="64Mi")
    uids = {p.metadata.name: p.metadata.uid for p in pods}
    load_all(
        k8s_api, namespace, "game", "600m"
    )  # far above the 100m request: outside the recommendation bounds
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "game"},
        "interval": "2s",
        "vertical": {
            "updateMode": "InPlace",
            "halfLife": "5m",
            "containerPolicies": [
                {
                    "containerName": "app",
                    "controlledResources": ["cpu"],
                    "controlledValues": "RequestsOnly",
                    "minAllowed": {"cpu": "50m"},
                    "maxAllowed": {"cpu": "2"},
                }
            ],
        },
    }
    create_policy(k8s_api, namespace, "size", spec)
    core = client.CoreV1Api(k8s_api)

    def resized() -> list[client.V1Pod]:
        now = ready_pods(core, namespace, "game")
        cpu = [p.spec.containers[0].resources.requests["cpu"] for p in now]
        return now if len(now) == 2 and all(c not in ("100m", "0.1") for c in cpu) else []

    after = wait_until(resized, timeout=120, what="both pods resized in place")
    assert {p.metadata.name: p.metadata.uid for p in after} == uids, (
        "same pods, same UIDs: resized, not replaced"
    )
    for pod in after:
        requested = pod.spec.containers[0].resources.requests["cpu"]
        millis = float(requested[:-1]) if requested.endswith("m") else float(requested) * 1000
        assert 600 <= millis <= 2000, requested  # at least the observed usage, at most maxAllowed
        assert pod.status.container_statuses[0].resources.requests["cpu"] == requested  # "kubelet" applied it
    status = policy_status(k8s_api, namespace, "size")
    assert status["recommendation"]["containerRecommendations"][0]["containerName"] == "app"
    assert "SuccessfulResize" in event_reasons(k8s_api, namespace, "size")


def test_conflicting_autoscalers_are_reported_and_nothing_is_scaled(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str
) -> None:
    start_pods(k8s_api, namespace, "web", 2, cpu_request="100m")
    start_pods(k8s_api, namespace, "api", 2, cpu_request="100m")
    load_all(k8s_api, namespace, "web", "400m")
    load_all(k8s_api, namespace, "api", "400m")
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 2,  # the HPA itself keeps 2: any change would come from Surge
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }
    client.AutoscalingV2Api(k8s_api).create_namespaced_horizontal_pod_autoscaler(namespace, hpa)
    create_policy(k8s_api, namespace, "web", cpu_policy("web"))
    create_policy(k8s_api, namespace, "api-a", cpu_policy("api"))
    create_policy(k8s_api, namespace, "api-b", cpu_policy("api"))

    for name in ("web", "api-a", "api-b"):
        status = wait_until(
            lambda n=name: (
                condition(s := policy_status(k8s_api, namespace, n), "Conflict").get("status") == "True" and s
            ),
            timeout=60,
            what=f"Conflict=True on {name}",
        )
        assert condition(status, "Ready")["status"] == "False"
    assert (
        "HorizontalPodAutoscaler web"
        in condition(policy_status(k8s_api, namespace, "web"), "Conflict")["message"]
    )
    assert (
        "AutoScalePolicy api-b"
        in condition(policy_status(k8s_api, namespace, "api-a"), "Conflict")["message"]
    )
    wait_until(
        lambda: "ConflictingAutoscaler" in event_reasons(k8s_api, namespace, "api-a"),
        timeout=30,
        what="conflict event",
    )
    assert replicas(k8s_api, namespace, "api") == 2
    assert replicas(k8s_api, namespace, "web") == 2
