"""Workloads on the KWOK-backed cluster: the Deployment builder (shared with the benchmarks:
surge_testbed.workloads) and the tests' own probes."""

from __future__ import annotations

from kubernetes import client

from surge_testbed.workloads import USAGE_CPU, USAGE_MEMORY, deployment

__all__ = ["USAGE_CPU", "USAGE_MEMORY", "deployment", "ready_pods", "set_usage"]


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
