"""A scheduled floor on the real control plane: the operator raises a Deployment to the schedule's minReplicas
while its window is open, says so in status, and brings it back down by the normal scale-down after."""

from __future__ import annotations

import time

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from surge.api.schedule import format_utc
from tests.integration.test_operator import (
    FAST_DOWN,
    cpu_policy,
    create_policy,
    load_all,
    policy_status,
    replicas,
    start_pods,
)
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

LEAD, LENGTH, FLOOR = 12.0, 20.0, 5  # lead: the operator sees the policy before the window


def test_schedule_window_raises_to_its_floor_and_ends_with_a_normal_scale_down(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str
) -> None:
    start_pods(k8s_api, namespace, "web", 2, cpu_request="100m")
    load_all(k8s_api, namespace, "web", "20m")  # 20% against a 50% target: the metric alone wants 1
    start = float(int(time.time() + LEAD))
    policy = cpu_policy("web", max_replicas=8)
    policy["horizontal"]["minReplicas"] = 2
    policy["horizontal"]["behavior"] = FAST_DOWN  # 5 s scale-down stabilization
    policy["horizontal"]["schedules"] = [
        {"name": "release", "start": format_utc(start), "duration": f"{int(LENGTH)}s", "minReplicas": FLOOR}
    ]
    create_policy(k8s_api, namespace, "web", policy)

    # Before the window: the policy is running and holds minReplicas.
    wait_until(
        lambda: policy_status(k8s_api, namespace, "web").get("lastDecision"), timeout=30, what="status"
    )
    assert time.time() < start, "the policy took the whole lead time to start; raise LEAD"
    assert replicas(k8s_api, namespace, "web") == 2

    # In the window: straight to the floor (not at the scale-up rate), while the metric still wants fewer.
    wait_until(lambda: replicas(k8s_api, namespace, "web") == FLOOR, timeout=LENGTH, what="the floor")
    raised_at = time.time()
    assert raised_at >= start, "scaled before the window opened"

    def floor_in_status() -> bool:
        load_all(k8s_api, namespace, "web", "20m")  # the new pods idle too (again: they may be new)
        last = policy_status(k8s_api, namespace, "web").get("lastDecision", {})
        return bool(last.get("limitedBy") == "ScheduledMinimum" and last.get("to") == FLOOR)

    wait_until(floor_in_status, timeout=start + LENGTH - time.time(), what="ScheduledMinimum in status")
    status = policy_status(k8s_api, namespace, "web")
    assert status["activeSchedule"] == {
        "name": "release",
        "minReplicas": FLOOR,
        "until": format_utc(start + LENGTH),
    }
    last = status["lastDecision"]
    assert last["reason"].startswith(f"schedule release: at least {FLOOR} replicas until "), last
    assert format_utc(start + LENGTH) in last["reason"]

    # After the window: back to 2, but only after the window closed and the stabilization passed.
    wait_until(
        lambda: replicas(k8s_api, namespace, "web") == 2, timeout=60, what="scale-down after the window"
    )
    lowered_at = time.time()
    assert lowered_at >= start + LENGTH + 3, (
        f"scaled down {lowered_at - start - LENGTH:.1f}s after the window"
    )
    status = policy_status(k8s_api, namespace, "web")
    assert status["lastDecision"]["limitedBy"] != "ScheduledMinimum"
    assert "activeSchedule" not in status
