"""AutoScalePolicyCheckpoint on the real API server: the CRD accepts what the codec writes, the store
round-trips it, the garbage collector deletes it with its policy, an unreadable one loads as None."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.api.spec import PolicySpec, parse_policy_spec
from surge.persistence.checkpoints import GROUP, PLURAL, VERSION, CheckpointStore, KubeCheckpointApi
from tests.conftest import Testbed, fresh_namespace
from tests.support.wait import wait_until
from tests.unit.test_checkpoint import realistic_state

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_CRD = ROOT / "crds" / "autoscaling.surge.dev_autoscalepolicycheckpoints.yaml"
POLICY_SPEC: dict[str, Any] = {
    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "arena"},
    "horizontal": {
        "maxReplicas": 30,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
            }
        ],
        "predictive": {"lookahead": "60s", "history": "10m"},
    },
    "vertical": {"updateMode": "Off", "halfLife": "1h"},
}


@pytest.fixture(scope="module")
def checkpoint_crd(testbed: Testbed, crd: Path) -> Path:
    # Server-side apply of our own fixture: idempotent on the shared cluster.
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHECKPOINT_CRD))
    testbed.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/autoscalepolicycheckpoints.autoscaling.surge.dev",
        "--timeout=60s",
    )
    return CHECKPOINT_CRD


@pytest.fixture
def ckpt_namespace(k8s_api: client.ApiClient) -> Iterator[str]:
    # Not "t-*": no test operator watches it, so nothing else touches these policies.
    yield from fresh_namespace(k8s_api, "ckpt-")


def create_policy(k8s_api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AutoScalePolicy",
        "metadata": {"name": name},
        "spec": POLICY_SPEC,
    }
    created: dict[str, Any] = client.CustomObjectsApi(k8s_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "autoscalepolicies", body
    )
    return created


def read_checkpoint(k8s_api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(k8s_api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def policy_spec() -> PolicySpec:
    return parse_policy_spec(POLICY_SPEC)


def test_round_trip_owner_reference_and_garbage_collection(
    checkpoint_crd: Path, k8s_api: client.ApiClient, ckpt_namespace: str
) -> None:
    policy = create_policy(k8s_api, ckpt_namespace, "arena")
    uid = policy["metadata"]["uid"]
    store = CheckpointStore(KubeCheckpointApi(k8s_api))
    state = realistic_state()
    now = time.time()
    assert asyncio.run(store.save(ckpt_namespace, "arena", uid, state, now - 15, now, generation=1))

    stored = read_checkpoint(k8s_api, ckpt_namespace, "arena")
    assert stored is not None
    (owner,) = stored["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("AutoScalePolicy", "arena", uid)
    assert not stored["metadata"].get("finalizers")
    # Nothing was pruned: the schema types every field the codec writes.
    assert stored["spec"]["state"]["vertical"]["containers"]["app"]["cpu"]["buckets"]

    restarted = CheckpointStore(KubeCheckpointApi(k8s_api))  # a new process
    restored = asyncio.run(restarted.load(ckpt_namespace, "arena", uid, policy_spec()))
    assert restored is not None
    assert restored.last_tick == now - 15
    assert restored.state.vertical == state.vertical
    assert restored.state.predictive == state.predictive
    assert restored.state.behavior.events == state.behavior.events
    # The restarted store replaces (it learnt the resourceVersion from the load).
    version = stored["metadata"]["resourceVersion"]
    assert asyncio.run(restarted.save(ckpt_namespace, "arena", uid, restored.state, now, now + 30))
    again = read_checkpoint(k8s_api, ckpt_namespace, "arena")
    assert again is not None
    assert again["metadata"]["resourceVersion"] != version
    assert again["spec"]["savedTime"] == now + 30

    # Deleting the policy deletes its checkpoint (garbage collector, no finalizer of ours).
    client.CustomObjectsApi(k8s_api).delete_namespaced_custom_object(
        GROUP, VERSION, ckpt_namespace, "autoscalepolicies", "arena", propagation_policy="Background"
    )
    # The test operator (if one runs) only watches t-* and e2e-*: nothing holds the policy.
    wait_until(
        lambda: read_checkpoint(k8s_api, ckpt_namespace, "arena") is None,
        timeout=60,
        what="the garbage collector to delete the checkpoint of the deleted policy",
    )


def test_unreadable_checkpoint_loads_as_none_with_a_reason(
    checkpoint_crd: Path, k8s_api: client.ApiClient, ckpt_namespace: str
) -> None:
    policy = create_policy(k8s_api, ckpt_namespace, "lobby")
    uid = policy["metadata"]["uid"]
    store = CheckpointStore(KubeCheckpointApi(k8s_api))
    now = time.time()
    assert asyncio.run(store.save(ckpt_namespace, "lobby", uid, realistic_state(ticks=20), None, now))
    # A checkpoint written by a future operator with another layout.
    client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object(
        GROUP, VERSION, ckpt_namespace, PLURAL, "lobby", {"spec": {"schemaVersion": 99}}
    )
    problems: list[tuple[str, str]] = []
    result = asyncio.run(
        CheckpointStore(KubeCheckpointApi(k8s_api)).load(
            ckpt_namespace, "lobby", uid, policy_spec(), on_problem=lambda *p: problems.append(p)
        )
    )
    assert result is None
    ((reason, message),) = problems
    assert reason == "UnsupportedCheckpointVersion"
    assert "schemaVersion 99" in message
    # The API server itself refuses what the schema does not allow (no opaque fields).
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ckpt_namespace,
            PLURAL,
            "lobby",
            {"spec": {"state": {"consecutiveFailures": "many"}}},
        )
    assert refused.value.status == 422
