"""HPA-parity claims proven on the real control plane: a StatefulSet target, a custom resource with a
/scale subresource, scale to zero and back, and the Pods metric (one Prometheus series per pod)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from tests.conftest import Testbed
from tests.integration.test_operator import (
    FAST_DOWN,
    condition,
    create_policy,
    policy_status,
    replicas,
    start_pods,
)
from tests.support.exporter import loopback_series
from tests.support.wait import holds_for, wait_until
from tests.support.workloads import USAGE_CPU, USAGE_MEMORY, deployment, ready_pods, set_usage

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FLEET_CRD = Path(__file__).with_name("fleet_crd.yaml")
FLEET_GROUP, FLEET_VERSION, FLEETS = "parity.surge.dev", "v1", "fleets"


def statefulset(name: str, *, replicas: int, cpu_request: str, usage_cpu: str) -> dict[str, Any]:
    """A StatefulSet whose pods (KWOK) all report ``usage_cpu``, including the ones created later."""
    template = deployment(
        name,
        replicas=replicas,
        cpu_request=cpu_request,
        pod_annotations={USAGE_CPU: usage_cpu, USAGE_MEMORY: "40Mi"},
    )["spec"]["template"]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "podManagementPolicy": "Parallel",  # all pods at once: the test waits for none in order
            "selector": {"matchLabels": {"app": name}},
            "template": template,
        },
    }


def sts_replicas(api: client.ApiClient, namespace: str, name: str) -> int:
    return int(client.AppsV1Api(api).read_namespaced_stateful_set(name, namespace).spec.replicas)


def test_statefulset_target_scales_on_cpu_like_a_deployment(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    apps.create_namespaced_stateful_set(
        namespace, statefulset("db", replicas=2, cpu_request="100m", usage_cpu="150m")
    )
    wait_until(lambda: len(ready_pods(core, namespace, "db")) == 2, timeout=60, what="2 StatefulSet pods")
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"},
        "interval": "1s",
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": 8,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
            "behavior": FAST_DOWN,
        },
    }
    create_policy(k8s_api, namespace, "db", spec)
    # 150% of requests against 50%: 2 -> ceil(2 x 3) = 6 (the default +100%/+4 pods per 15 s allows it
    # in one step), and every new pod reports 150% too, so it goes on to maxReplicas.
    wait_until(lambda: sts_replicas(k8s_api, namespace, "db") == 8, timeout=120, what="StatefulSet at 8")
    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "db")).get("currentReplicas") == 8 and s,
        timeout=30,
        what="status at 8",
    )
    assert condition(status, "ScalingLimited")["status"] == "True"
    assert status["currentMetrics"][0]["value"] == "150"

    # Idle: every pod at 5m = 5% -> ceil(8 x 0.1) = 1, stabilized 5 s.
    wait_until(lambda: len(ready_pods(core, namespace, "db")) == 8, timeout=60, what="8 ready pods")
    for pod in ready_pods(core, namespace, "db"):
        set_usage(core, namespace, pod.metadata.name, cpu="5m", memory="40Mi")
    wait_until(lambda: sts_replicas(k8s_api, namespace, "db") == 1, timeout=120, what="StatefulSet at 1")


@pytest.fixture(scope="session")
def fleet_crd(testbed: Testbed, k8s_api: client.ApiClient) -> str:
    """The Fleet CRD, installed once (left installed: cheap, and other sessions may be using it)."""
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(FLEET_CRD))
    testbed.kubectl("wait", "--for=condition=Established", f"crd/{FLEETS}.{FLEET_GROUP}", "--timeout=60s")

    def served() -> bool:
        resources = client.CustomObjectsApi(k8s_api).get_api_resources(FLEET_GROUP, FLEET_VERSION).resources
        return any(r.name == f"{FLEETS}/scale" for r in resources)

    wait_until(served, timeout=30, what="fleets/scale in discovery")
    return f"{FLEET_GROUP}/{FLEET_VERSION}"


def create_fleet(api: client.ApiClient, namespace: str, name: str, count: int) -> None:
    objects = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{FLEET_GROUP}/{FLEET_VERSION}", "kind": "Fleet", "metadata": {"name": name}}
    objects.create_namespaced_custom_object(
        FLEET_GROUP, FLEET_VERSION, namespace, FLEETS, {**body, "spec": {"replicas": count}}
    )
    # What a fleet controller would report: how many servers it runs and how to find their pods.
    objects.patch_namespaced_custom_object_status(
        FLEET_GROUP,
        FLEET_VERSION,
        namespace,
        FLEETS,
        name,
        {"status": {"replicas": count, "selector": f"app={name}"}},
    )


def fleet_replicas(api: client.ApiClient, namespace: str, name: str) -> int:
    fleet = client.CustomObjectsApi(api).get_namespaced_custom_object(
        FLEET_GROUP, FLEET_VERSION, namespace, FLEETS, name
    )
    return int(fleet["spec"]["replicas"])


def players(testbed: Testbed, stack: ExitStack, namespace: str, source: str, count: int) -> None:
    """One more loopback series surge_test_players{namespace, source} = count, scraped by Prometheus."""
    series = f'surge_test_players{{namespace="{namespace}",source="{source}"}} {count}\n'
    stack.enter_context(loopback_series(testbed.targets_dir, f"parity-{namespace}-{source}", series))


@pytest.fixture
def series(testbed: Testbed) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def buffer_metric(namespace: str, size: str, per_replica: int = 100) -> dict[str, Any]:
    query = f'sum(surge_test_players{{namespace="{namespace}"}})'
    return {
        "type": "Buffer",
        "buffer": {"usedQuery": query, "capacityPerReplica": per_replica, "size": size},
    }


def test_custom_resource_with_scale_subresource_is_scaled(
    operator: KopfRunner,
    k8s_api: client.ApiClient,
    namespace: str,
    testbed: Testbed,
    fleet_crd: str,
    series: ExitStack,
) -> None:
    players(testbed, series, namespace, "lobby", 430)
    create_fleet(k8s_api, namespace, "arena", 2)
    spec = {
        "scaleTargetRef": {"apiVersion": fleet_crd, "kind": "Fleet", "name": "arena"},
        "interval": "1s",
        "horizontal": {"minReplicas": 1, "maxReplicas": 20, "metrics": [buffer_metric(namespace, "20%")]},
    }
    create_policy(k8s_api, namespace, "arena", spec)
    # (430 + 20%) / 100 per replica = 5.16 -> 6, written through fleets/scale into spec.replicas.
    wait_until(lambda: fleet_replicas(k8s_api, namespace, "arena") == 6, timeout=90, what="Fleet at 6")
    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "arena")).get("desiredReplicas") == 6 and s,
        timeout=30,
        what="status desired 6",
    )
    assert status["currentMetrics"][0]["name"] == "buffer-0"
    assert condition(status, "AbleToScale")["status"] == "True"


def test_scale_to_zero_and_back_from_zero_with_a_buffer_metric(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str, testbed: Testbed, series: ExitStack
) -> None:
    players(testbed, series, namespace, "idle", 0)
    start_pods(k8s_api, namespace, "arena", 2)
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
        "interval": "1s",
        "horizontal": {
            "minReplicas": 0,
            "maxReplicas": 10,
            "metrics": [buffer_metric(namespace, "10%")],  # 10% of nothing is nothing
            "behavior": FAST_DOWN,
        },
    }
    create_policy(k8s_api, namespace, "arena", spec)
    wait_until(lambda: replicas(k8s_api, namespace, "arena") == 0, timeout=120, what="scale to zero")
    core = client.CoreV1Api(k8s_api)
    wait_until(lambda: not ready_pods(core, namespace, "arena"), timeout=60, what="no pods left")
    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "arena")).get("currentReplicas") == 0 and s,
        timeout=30,
        what="status at 0",
    )
    # At zero with minReplicas 0 the policy keeps evaluating (HPA would disable scaling only for min > 0).
    assert condition(status, "ScalingActive")["status"] == "True"

    players(testbed, series, namespace, "arrivals", 250)  # (250 + 10%) / 100 -> 3, from no pod at all
    wait_until(lambda: replicas(k8s_api, namespace, "arena") == 3, timeout=120, what="back from zero to 3")
    wait_until(lambda: len(ready_pods(core, namespace, "arena")) == 3, timeout=60, what="3 pods")


def test_pods_metric_scales_on_one_series_per_pod(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str, testbed: Testbed, series: ExitStack
) -> None:
    first = [p.metadata.name for p in start_pods(k8s_api, namespace, "arena", 2)]
    exposition = "".join(
        f'surge_test_sessions{{namespace="{namespace}",pod="{name}"}} 30\n' for name in first
    )
    # A series of a pod that is not the target's must not count (HPA reads only the target's pods).
    exposition += f'surge_test_sessions{{namespace="{namespace}",pod="not-arena-0"}} 100000\n'
    series.enter_context(loopback_series(testbed.targets_dir, f"parity-{namespace}-sessions", exposition))
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
        "interval": "1s",
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": 20,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "query": f'surge_test_sessions{{namespace="{namespace}"}}',
                        "target": {"type": "AverageValue", "averageValue": "10"},
                    },
                }
            ],
        },
    }
    create_policy(k8s_api, namespace, "sessions", spec)
    # 30 per pod against 10: ceil(3 x 2) = 6. The 4 new pods have no series: on a scale-up HPA counts
    # them as 0, so (30 + 30 + 0 x 4) / 6 = 10 is on target and the count stays at 6 (not 18).
    wait_until(lambda: replicas(k8s_api, namespace, "arena") == 6, timeout=90, what="6 replicas")
    status = wait_until(
        lambda: (s := policy_status(k8s_api, namespace, "sessions")).get("currentReplicas") == 6 and s,
        timeout=60,
        what="status at 6",
    )
    wait_until(
        lambda: (
            "4 without metrics" in policy_status(k8s_api, namespace, "sessions")["lastDecision"]["reason"]
        ),
        timeout=60,
        what="the new pods reported as missing",
    )
    holds_for(lambda: replicas(k8s_api, namespace, "arena") == 6, seconds=5, what="6 replicas held")
    assert status["currentMetrics"][0]["value"] == "30"
    assert math.isclose(float(status["currentMetrics"][0]["target"]), 10)
