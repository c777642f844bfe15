"""The real ports of a tick against the real API server: preconditions answer 409/404 as reconcile expects.

Also one whole tick through `wiring.build_dependencies`, so the wiring, the raw-JSON Event and the
status precondition are exercised on the server that enforces them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from surge.actuation.scale import KubeScaleClient, ScaleConflict
from surge.actuation.target import TargetRef
from surge.config import OperatorConfig
from surge.policy_store import GROUP, PLURAL, VERSION, PolicyGone, PolicyStore, StatusConflict
from surge.reconcile import PolicyMemory, PolicyObject, reconcile_once
from surge.wiring import build_dependencies
from tests.conftest import Testbed, fresh_namespace
from tests.support.wait import wait_until
from tests.support.workloads import deployment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def ns(k8s_api: client.ApiClient) -> Iterator[str]:
    yield from fresh_namespace(k8s_api, "rp-")  # not watched by the session's operator


def create_policy(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AutoScalePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }
    created: Any = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return dict(created)


def read_policy(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return dict(obj)


def test_scale_writes_based_on_a_stale_read_are_refused(k8s_api: client.ApiClient, ns: str) -> None:
    client.AppsV1Api(k8s_api).create_namespaced_deployment(ns, deployment("web", replicas=2))  # type: ignore[arg-type]
    scales = KubeScaleClient(k8s_api)

    async def scenario() -> int:
        target = await scales.resolve(TargetRef("apps/v1", "Deployment", "web", ns))
        # The Scale's resourceVersion is the Deployment's: the controller's status updates move it too, so
        # a write can meet a 409 without anyone scaling (reconcile then re-reads and decides once more).
        for _ in range(5):
            before = await scales.read(target)
            assert before.resource_version
            try:
                await scales.write(target, 3, before.resource_version)  # based on the latest: accepted
                break
            except ScaleConflict:
                continue
        else:
            pytest.fail("five writes in a row met a 409")
        with pytest.raises(ScaleConflict):
            await scales.write(target, 4, before.resource_version)  # based on a read that is now stale
        return (await scales.read(target)).spec_replicas

    assert asyncio.run(scenario()) == 3


def test_status_writes_never_clobber_a_newer_policy(k8s_api: client.ApiClient, ns: str, crd: Path) -> None:
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "vertical": {}}
    created = create_policy(k8s_api, ns, "p", spec)
    rv = created["metadata"]["resourceVersion"]
    store = PolicyStore(k8s_api)

    async def scenario() -> None:
        new_rv = await store.patch_status(ns, "p", {"desiredReplicas": 3}, rv)
        assert new_rv != rv
        with pytest.raises(StatusConflict):
            await store.patch_status(ns, "p", {"desiredReplicas": 4}, rv)
        with pytest.raises(PolicyGone):
            await store.patch_status(ns, "absent", {"desiredReplicas": 4}, "")

    asyncio.run(scenario())
    assert read_policy(k8s_api, ns, "p")["status"]["desiredReplicas"] == 3


def test_one_tick_with_the_real_wiring_reports_a_failed_metric(
    k8s_api: client.ApiClient, ns: str, crd: Path, testbed: Testbed
) -> None:
    client.AppsV1Api(k8s_api).create_namespaced_deployment(ns, deployment("web", replicas=2))  # type: ignore[arg-type]
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Prometheus",
                    "prometheus": {
                        "query": 'sum(surge_no_such_series{namespace="' + ns + '"})',
                        "target": {"type": "AverageValue", "averageValue": "10"},
                    },
                }
            ],
        },
    }
    created = create_policy(k8s_api, ns, "p", spec)
    meta = created["metadata"]
    cfg = OperatorConfig(kubeconfig=str(testbed.kubeconfig), prometheus_url=testbed.prometheus_url)
    deps = build_dependencies(cfg)
    obj = PolicyObject(
        namespace=ns,
        name="p",
        uid=meta["uid"],
        generation=int(meta["generation"]),
        spec=created["spec"],
        status={},
        annotations={},
        resource_version=meta["resourceVersion"],
    )
    result = asyncio.run(reconcile_once(deps, obj, PolicyMemory()))
    assert result.outcome == "ok"
    assert not result.scaled
    status = read_policy(k8s_api, ns, "p")["status"]
    active = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "FailedGetExternalMetric")
    assert status["currentReplicas"] == 2

    def reasons() -> list[str]:
        found = (
            client.CoreV1Api(k8s_api).list_namespaced_event(ns, field_selector="involvedObject.name=p").items
        )
        return [str(e.reason) for e in found]

    wait_until(
        lambda: "FailedGetExternalMetric" in reasons(), timeout=10, what="the Event of the failed metric"
    )
