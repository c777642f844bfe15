"""Builders for the workloads put on the KWOK-backed cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY = "kwok.x-k8s.io/usage-memory"
PLACEHOLDER_IMAGE = "surge.dev/placeholder:never-pulled"


def deployment(
    name: str,
    *,
    replicas: int,
    cpu_request: str = "100m",
    memory_request: str = "64Mi",
    container: str = "app",
    pod_annotations: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A one-container Deployment labelled app=<name>; KWOK runs its pods, so the image is never pulled.

    Simulated usage goes in `pod_annotations` (USAGE_CPU, USAGE_MEMORY).
    """
    labels = {"app": name}
    pod_spec: dict[str, Any] = {
        "containers": [
            {
                "name": container,
                "image": PLACEHOLDER_IMAGE,
                "resources": {"requests": {"cpu": cpu_request, "memory": memory_request}},
            }
        ]
    }
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": dict(pod_annotations or {})},
                "spec": pod_spec,
            },
        },
    }
