"""Proof that the embedded test bed is made of real parts: each test asserts state only they can produce."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.conftest import Testbed
from tests.support.exporter import loopback_series
from tests.support.wait import wait_until
from tests.support.workloads import deployment, ready_pods, set_usage

pytestmark = pytest.mark.integration


def test_deployment_pods_are_scheduled_on_kwok_nodes_and_become_ready(
    k8s_api: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("smoke", replicas=3))

    pods = wait_until(
        lambda: (p := ready_pods(core, namespace, "smoke")) and len(p) == 3 and p,
        timeout=60,
        what="3 Ready pods",
    )
    kwok_nodes = {
        n.metadata.name
        for n in core.list_node(label_selector="type=kwok").items
        if n.metadata.annotations.get("kwok.x-k8s.io/node") == "fake"
    }
    assert {p.spec.node_name for p in pods} <= kwok_nodes, "pods must be bound by the scheduler to KWOK nodes"
    # The ReplicaSet controller made them: each pod is owned by the deployment's ReplicaSet.
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)
    status = apps.read_namespaced_deployment_status("smoke", namespace).status
    assert status.ready_replicas == 3


def test_nodes_expose_only_loopback_addresses(k8s_api: client.ApiClient) -> None:
    """metrics-server dials node addresses: none may point anywhere but this machine."""
    import ipaddress

    nodes = client.CoreV1Api(k8s_api).list_node(label_selector="type=kwok").items
    assert len(nodes) >= 1
    for node in nodes:
        for addr in node.status.addresses or []:
            if addr.type == "Hostname":
                assert addr.address == "localhost", addr
            else:
                assert ipaddress.ip_address(addr.address).is_loopback, (node.metadata.name, addr)


def _pod_metrics(k8s_api: client.ApiClient, namespace: str) -> dict[str, dict[str, str]]:
    raw = client.CustomObjectsApi(k8s_api).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", namespace, "pods"
    )
    return {item["metadata"]["name"]: item["containers"][0]["usage"] for item in raw["items"]}


def _millicores(q: str) -> float:
    if q.endswith("n"):
        return int(q[:-1]) / 1e6
    if q.endswith("u"):
        return int(q[:-1]) / 1e3
    if q.endswith("m"):
        return float(q[:-1])
    return float(q) * 1000


def _mebibytes(q: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    return float(q[:-2]) * units[q[-2:]] if q[-2:] in units else int(q) / 2**20


def test_usage_annotations_reach_the_metrics_api(k8s_api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("usage", replicas=2))
    pods = wait_until(
        lambda: len(p := ready_pods(core, namespace, "usage")) == 2 and p, timeout=60, what="pods"
    )
    wanted = {pods[0].metadata.name: (250.0, 300.0), pods[1].metadata.name: (700.0, 120.0)}
    for pod, (cpu_m, mem_mi) in wanted.items():
        set_usage(core, namespace, pod, cpu=f"{cpu_m:.0f}m", memory=f"{mem_mi:.0f}Mi")

    def matches() -> bool:
        seen = _pod_metrics(k8s_api, namespace)
        return all(
            pod in seen
            and abs(_millicores(seen[pod]["cpu"]) - cpu) < 0.05 * cpu
            and abs(_mebibytes(seen[pod]["memory"]) - mem) < 1
            for pod, (cpu, mem) in wanted.items()
        )

    # metrics-server needs two scrapes (5 s resolution) to turn KWOK's cumulative CPU counter into a rate.
    wait_until(matches, timeout=90, what="metrics.k8s.io to report the annotated usage")


def test_real_hpa_scales_up_when_usage_rises(k8s_api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    auto = client.AutoscalingV2Api(k8s_api)
    apps.create_namespaced_deployment(namespace, deployment("hpa", replicas=2, cpu_request="100m"))
    pods = wait_until(
        lambda: len(p := ready_pods(core, namespace, "hpa")) == 2 and p, timeout=60, what="pods"
    )
    for pod in pods:  # 300% of the 100m request: the HPA must want 2 * 300/50 = 12 -> capped at 6
        set_usage(core, namespace, pod.metadata.name, cpu="300m", memory="50Mi")
    hpa: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hpa"},
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }
    auto.create_namespaced_horizontal_pod_autoscaler(namespace, hpa)

    def scaled() -> Any:
        st = auto.read_namespaced_horizontal_pod_autoscaler_status("hpa", namespace).status
        return st.desired_replicas is not None and st.desired_replicas > 2 and st

    status = wait_until(scaled, timeout=120, what="the HPA to recommend more replicas")
    assert status.current_metrics[0].resource.current.average_utilization >= 250
    conditions = {c.type: c for c in status.conditions}
    assert conditions["AbleToScale"].status == "True"
    assert conditions["ScalingActive"].status == "True"
    wait_until(
        lambda: apps.read_namespaced_deployment("hpa", namespace).spec.replicas > 2,
        timeout=60,
        what="the HPA to raise the Deployment's replicas",
    )


@pytest.fixture
def loopback_exporter(testbed: Testbed) -> Iterator[str]:
    """A /metrics endpoint on 127.0.0.1, registered as a Prometheus file_sd target."""
    token = str(threading.get_ident())
    with loopback_series(testbed.targets_dir, f"smoke-{token}", f'surge_smoke_value{{token="{token}"}} 42\n'):
        yield token


def test_prometheus_answers_promql_over_a_loopback_exporter(testbed: Testbed, loopback_exporter: str) -> None:
    query = f'sum(surge_smoke_value{{token="{loopback_exporter}"}}) * 2'
    url = f"{testbed.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})

    def answer() -> float | None:
        with urllib.request.urlopen(url, timeout=5) as resp:
            data = json.load(resp)["data"]["result"]
        return float(data[0]["value"][1]) if data else None

    assert wait_until(answer, timeout=60, what="Prometheus to scrape the exporter") == 84.0
