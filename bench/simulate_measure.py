"""Measures on the embedded test bed the two delays `surge simulate`'s fleet model needs as facts.

1. pod start: from a /scale write until each new pod is Running and Ready (what the load generator's
   sim plane waits for before it puts players on a pod);
2. first usage point: from a pod being Ready until metrics.k8s.io serves a PodMetrics for it (what the
   HPA and Surge's CPU metric wait for).

Run (serialised with other cluster users): `flock /tmp/surge-cluster.lock python -m bench.simulate_measure`.
Uses a namespace of its own and deletes it at the end. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import uuid
from typing import Any, cast

from kubernetes import client
from surge_loadgen.sim import is_ready, make_api_client

POLL = 0.05  # seconds between LISTs while waiting


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"kwok.x-k8s.io/usage-cpu": "260m", "kwok.x-k8s.io/usage-memory": "98Mi"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "arena",
                            "image": "surge-game:dev",
                            "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def _pods(core: client.CoreV1Api, ns: str, name: str) -> list[dict[str, Any]]:
    raw = core.list_namespaced_pod(ns, label_selector=f"app={name}", _preload_content=False)
    items: list[dict[str, Any]] = json.loads(cast(Any, raw).data)["items"]
    return items


def _with_metrics(custom: client.CustomObjectsApi, ns: str) -> set[str]:
    answer: Any = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods")
    return {item["metadata"]["name"] for item in answer.get("items", [])}


def measure(steps: list[int], timeout: float) -> dict[str, Any]:
    api = make_api_client(os.environ.get("SURGE_KUBECONFIG"))
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    ns = f"sim-measure-{uuid.uuid4().hex[:6]}"
    name = "arena"
    core.create_namespace(cast(Any, {"metadata": {"name": ns}}))  # the client accepts plain dicts
    start_delays: list[float] = []
    metric_delays: list[float] = []
    try:
        apps.create_namespaced_deployment(ns, cast(Any, _deployment(name)))
        deadline = time.monotonic() + timeout
        while len([p for p in _pods(core, ns, name) if is_ready(p)]) < 2 and time.monotonic() < deadline:
            time.sleep(POLL)
        for replicas in steps:
            # A random pause, so each step starts at its own phase of metrics-server's scrape cycle.
            time.sleep(random.uniform(0.0, 10.0))
            before = {p["metadata"]["name"] for p in _pods(core, ns, name)}
            written = time.monotonic()
            apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": replicas}})
            ready_at: dict[str, float] = {}
            metrics_at: dict[str, float] = {}
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                now = time.monotonic()
                for pod in _pods(core, ns, name):
                    pod_name = pod["metadata"]["name"]
                    if pod_name not in before and pod_name not in ready_at and is_ready(pod):
                        ready_at[pod_name] = now
                for pod_name in _with_metrics(custom, ns):
                    if pod_name in ready_at and pod_name not in metrics_at:
                        metrics_at[pod_name] = now
                if len(metrics_at) >= replicas - len(before):
                    break
                time.sleep(POLL)
            start_delays += [t - written for t in ready_at.values()]
            metric_delays += [metrics_at[p] - ready_at[p] for p in metrics_at]
    finally:
        core.delete_namespace(ns)

    def spread(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {
            "n": len(values),
            "min": round(min(values), 2),
            "median": round(statistics.median(values), 2),
            "max": round(max(values), 2),
        }

    return {
        "poll_s": POLL,
        "pod_start_s": spread(start_delays),
        "first_usage_after_ready_s": spread(metric_delays),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", default="4,6,8,10,12,14", help="replica counts to scale to, in order")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait per step")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    print(json.dumps(measure(steps, args.timeout), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
