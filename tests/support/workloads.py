"""Small builders for the workloads tests put on the KWOK-backed cluster."""

from __future__ import annotations

from typing import Any

from kubernetes import client

USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY = "kwok.x-k8s.io/usage-memory"


def deployment(
    name: str,
    *,
    replicas: int,
    cpu_request: str = "100m",
    memory_request: str = "64Mi",
    container: str = "app",
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A one-container Deployment; KWOK runs its pods, so the image is never pulled."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations or {}},
                "spec": {
                    "containers": [
                        {
                            "name": container,
                            "image": "surge.dev/placeholder:never-pulled",
                            "resources": {"requests": {"cpu": cpu_request, "memory": memory_request}},
                        }
                    ]
                },
            },
        },
    }


def ready_pods(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    """Running pods of `app` whose Ready condition is True (terminating pods excluded)."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    ]


def set_usage(core: client.CoreV1Api, namespace: str, pod: str, *, cpu: str, memory: str) -> None:
    """Drives KWOK's simulated usage for one pod through its annotations (one API write)."""
    core.patch_namespaced_pod(
        pod, namespace, {"metadata": {"annotations": {USAGE_CPU: cpu, USAGE_MEMORY: memory}}}
    )
