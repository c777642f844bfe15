"""Objects and readings the fault tests share: policies, Deployments, status, Events, the Lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from tests.integration.test_operator import (
    condition,
    create_policy,
    events,
    policy_status,
    replicas,
    start_pods,
)

__all__ = [
    "SLACK",
    "condition",
    "create_policy",
    "demand_policy",
    "events",
    "lease_holder",
    "policy_status",
    "reasons",
    "replicas",
    "start_pods",
    "wait_for_monotonic",
    "watched_fleet",
]

# Allowed on top of "one interval" for the next decision: +-5% tick jitter, the listing age a tick may use,
# the watch delay of the test's own history, and a busy 2-core machine.
SLACK = 2.5

FREE_UP = {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]}
FREE_DOWN = {
    "stabilizationWindowSeconds": 0,
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}],
}


def demand_policy(
    target: str,
    query: str,
    *,
    per_replica: int = 100,
    interval: str = "1s",
    max_replicas: int = 30,
    scale_up: dict[str, Any] | None = None,
    scale_down: dict[str, Any] | None = None,
    fallback: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Prometheus AverageValue policy: desired = ceil(value / per_replica); rates free unless given."""
    horizontal: dict[str, Any] = {
        "minReplicas": 1,
        "maxReplicas": max_replicas,
        "metrics": [
            {
                "type": "Prometheus",
                "prometheus": {
                    "query": query,
                    "target": {"type": "AverageValue", "averageValue": str(per_replica)},
                },
            }
        ],
        "behavior": {"scaleUp": scale_up or FREE_UP, "scaleDown": scale_down or FREE_DOWN},
    }
    if fallback:
        horizontal["fallback"] = fallback
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "interval": interval,
        "horizontal": horizontal,
    }


def reasons(api: client.ApiClient, namespace: str, policy: str, type_: str | None = None) -> list[str]:
    return [e.reason for e in events(api, namespace, policy) if type_ is None or e.type == type_]


def lease_holder(api: client.ApiClient, namespace: str, name: str) -> str:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
    except client.ApiException:
        return ""
    return str(lease.spec.holder_identity or "")


def wait_for_monotonic(at: float) -> None:
    """Waits until time.monotonic() reaches `at`: the scenario's own timing (a downtime, a kill inside
    a window), not a wait for a state."""
    remaining = at - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def watched_fleet(
    api: client.ApiClient,
    namespace: str,
    pods: int,
    histories: Callable[[str, str], Any],
    operators: Callable[..., Any],
) -> tuple[Any, Any]:
    """The usual start of a fault test: Deployment "web" with `pods` pods, its replica history recorded,
    one healthy operator. Returns (history, operator)."""
    start_pods(api, namespace, "web", pods)
    history = histories(namespace, "web")
    op = operators()
    op.wait_healthy()
    return history, op


def assert_no_crash_loop(op: Any, *, max_tracebacks: int = 0) -> None:
    """The process is the one we started (never exited), answers /healthz, and failures were logged as lines,
    not as a traceback per tick."""
    assert op.alive(), f"the operator exited with {op.exit_code()}:\n{op.tail()}"
    assert op.healthy(), f"/healthz is failing:\n{op.tail()}"
    found = op.tracebacks()
    assert len(found) <= max_tracebacks, f"{len(found)} traceback(s) in the log, e.g.: {found[:2]}"


def ready_true(api: client.ApiClient, namespace: str, policy: str) -> dict[str, Any] | None:
    status = policy_status(api, namespace, policy)
    return status if condition(status, "Ready").get("status") == "True" else None
