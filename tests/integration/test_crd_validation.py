"""The AutoScalePolicy CRD on a real kube-apiserver: schema, CEL rules, defaults, status, printer columns.

Every invalid spec in crd_cases.yaml must be rejected by the API server itself with the expected message, and
every valid spec and every file in manifests/samples/ must be accepted. Creates use server-side dry run with
fieldValidation=Strict (kubectl's default), so nothing but the update cases and the status test is stored.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import conftest
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml"
SAMPLES_DIR = ROOT / "manifests" / "samples"
CASES = yaml.safe_load((Path(__file__).parent / "crd_cases.yaml").read_text())

GROUP, VERSION, PLURAL, KIND = "autoscaling.surge.dev", "v1alpha1", "autoscalepolicies", "AutoScalePolicy"
CRD_NAME = f"{PLURAL}.{GROUP}"
ESTABLISH_TIMEOUT = 60.0


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def contained(sent: Any, stored: Any) -> bool:
    """Everything sent is in what was stored: objects may have gained defaulted fields, lists keep length."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(
            k in stored and contained(v, stored[k]) for k, v in sent.items()
        )
    if isinstance(sent, list):
        return (
            isinstance(stored, list)
            and len(sent) == len(stored)
            and all(contained(a, b) for a, b in zip(sent, stored, strict=True))
        )
    return bool(sent == stored)


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def case_spec(case: dict[str, Any]) -> dict[str, Any]:
    return merge_patch(CASES["base"], case.get("patch") or {})


def rejection(exc: ApiException) -> str:
    """The Status message of a rejected request (it lists every cause)."""
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


def _generated_invalid_cases() -> list[dict[str, Any]]:
    """Cases whose values are too long to write in the table."""
    metric = CASES["base"]["horizontal"]["metrics"][0]
    return [
        {
            "id": "too-many-metrics",
            "patch": {"horizontal": {"metrics": [metric] * 17}},
            "expect": "spec.horizontal.metrics: Too many: 17: must have at most 16 items",
        },
        {
            "id": "query-too-long",
            "patch": {
                "horizontal": {
                    "metrics": [
                        {
                            "type": "Prometheus",
                            "prometheus": {"query": "x" * 4097, "target": {"type": "Value", "value": "1"}},
                        }
                    ]
                }
            },
            "expect": "spec.horizontal.metrics[0].prometheus.query: Too long: may not be more than 4096",
        },
        {
            "id": "too-many-container-policies",
            "patch": {"vertical": {"containerPolicies": [{"containerName": f"c{i}"} for i in range(33)]}},
            "expect": "spec.vertical.containerPolicies: Too many: 33: must have at most 32 items",
        },
    ]


INVALID = [*CASES["invalid"], *_generated_invalid_cases()]


@pytest.fixture(scope="session")
def crd_installed(crd: Path) -> None:
    """The CRD from crds/, applied server-side by the shared session fixture (the cluster is shared)."""
    assert crd == CRD_FILE


@pytest.fixture(scope="session")
def crd_namespace(k8s_api: client.ApiClient, crd_installed: None) -> Iterator[str]:
    """One namespace for this run's policies; deleted at the end (without waiting for finalization)."""
    core = client.CoreV1Api(k8s_api)
    name = f"crd-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    objects = client.CustomObjectsApi(k8s_api)
    # Established means served, but the first requests may still race the new REST handler: poll until the
    # minimal policy passes a dry-run create and a known-bad one is rejected with this CRD's own message.
    expect = CASES["invalid"][0]["expect"]

    def ready() -> bool:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, name, PLURAL, policy("probe", CASES["base"]), dry_run="All"
        )
        try:
            objects.create_namespaced_custom_object(
                GROUP, VERSION, name, PLURAL, policy("probe", case_spec(CASES["invalid"][0])), dry_run="All"
            )
        except ApiException as exc:
            return expect in rejection(exc)
        return False

    wait_until(
        ready, timeout=ESTABLISH_TIMEOUT, what="the AutoScalePolicy endpoint to validate with this CRD"
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def objects(k8s_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_api)


def dry_run_create(objects: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All", field_validation="Strict"
    )
    return result


def test_case_table_is_big_enough() -> None:
    assert len(INVALID) + len(CASES["update"]) >= 35
    ids = [c["id"] for c in [*INVALID, *CASES["update"], *CASES["valid"]]]
    assert len(ids) == len(set(ids)), "case ids must be unique"


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c["id"])
def test_invalid_spec_is_rejected_by_the_api_server(
    objects: client.CustomObjectsApi, crd_namespace: str, case: dict[str, Any]
) -> None:
    with pytest.raises(ApiException) as info:
        dry_run_create(objects, crd_namespace, policy(f"bad-{case['id']}"[:63], case_spec(case)))
    message = rejection(info.value)
    assert info.value.status in (400, 422), message
    assert case["expect"] in message


@pytest.mark.parametrize("case", CASES["update"], ids=lambda c: c["id"])
def test_invalid_update_is_rejected_by_the_api_server(
    objects: client.CustomObjectsApi, crd_namespace: str, case: dict[str, Any]
) -> None:
    name = f"upd-{case['id']}"[:63]
    created = objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        crd_namespace,
        PLURAL,
        policy(name, merge_patch(CASES["base"], case.get("before") or {})),
    )
    try:
        changed = copy.deepcopy(created)
        changed["spec"] = merge_patch(created["spec"], case["patch"])
        with pytest.raises(ApiException) as info:
            objects.replace_namespaced_custom_object(
                GROUP, VERSION, crd_namespace, PLURAL, name, changed, dry_run="All", field_validation="Strict"
            )
        message = rejection(info.value)
        assert info.value.status == 422, message
        assert case["expect"] in message
        # The same object with an unchanged target is a legal update (the rule is a transition rule).
        legal = copy.deepcopy(created)
        legal["spec"]["horizontal"]["maxReplicas"] = 11
        objects.replace_namespaced_custom_object(
            GROUP, VERSION, crd_namespace, PLURAL, name, legal, dry_run="All", field_validation="Strict"
        )
    finally:
        objects.delete_namespaced_custom_object(GROUP, VERSION, crd_namespace, PLURAL, name)


@pytest.mark.parametrize("case", CASES["valid"], ids=lambda c: c["id"])
def test_valid_spec_is_accepted(
    objects: client.CustomObjectsApi, crd_namespace: str, case: dict[str, Any]
) -> None:
    try:
        dry_run_create(objects, crd_namespace, policy(f"ok-{case['id']}"[:63], case_spec(case)))
    except ApiException as exc:
        pytest.fail(f"valid case {case['id']} rejected: {rejection(exc)}")


SAMPLES = sorted(p for p in SAMPLES_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def test_samples_exist() -> None:
    assert len(SAMPLES) >= 6
    listed = yaml.safe_load((SAMPLES_DIR / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == [p.name for p in SAMPLES], "samples/kustomization.yaml must list every sample"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_accepted(objects: client.CustomObjectsApi, crd_namespace: str, path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, f"{path.name} is empty"
    for doc in docs:
        assert doc["kind"] == KIND
        try:
            stored = dry_run_create(objects, crd_namespace, doc)
        except ApiException as exc:
            pytest.fail(f"{path.name} rejected: {rejection(exc)}")
        # Strict validation plus a structural schema: nothing the sample says may be pruned away.
        # (Defaults may add fields, also inside list items.)
        assert contained(doc["spec"], stored["spec"]), f"{path.name}: fields were pruned"


def test_defaults_follow_the_api_contract(objects: client.CustomObjectsApi, crd_namespace: str) -> None:
    spec = merge_patch(
        CASES["base"],
        {"horizontal": {"behavior": {}}, "vertical": {"containerPolicies": [{"containerName": "arena"}]}},
    )
    stored = dry_run_create(objects, crd_namespace, policy("defaults", spec))["spec"]
    assert stored["mode"] == "Active"
    assert stored["interval"] == "15s"
    horizontal = stored["horizontal"]
    assert horizontal["minReplicas"] == 1
    assert horizontal["tolerance"] == {"scaleUp": 0.1, "scaleDown": 0.1}
    # HPA autoscaling/v2 behavior defaults, applied once `behavior` is present.
    assert horizontal["behavior"]["scaleUp"] == {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15},
        ],
    }
    assert horizontal["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    vertical = stored["vertical"]
    assert (vertical["updateMode"], vertical["halfLife"]) == ("Off", "24h")
    assert (
        vertical["lowerBoundPercentile"],
        vertical["targetPercentile"],
        vertical["upperBoundPercentile"],
    ) == (
        0.5,
        0.9,
        0.95,
    )


def _table(k8s_api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """`kubectl get asp -o wide` as the server renders it (a meta.k8s.io Table, all priorities)."""
    response = k8s_api.call_api(
        *k8s_api.param_serialize(
            "GET",
            f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
            header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
            query_params=[("includeObject", "None")],
            auth_settings=["BearerToken"],
        )
    )
    response.read()
    table: dict[str, Any] = json.loads(response.data)
    return table


def test_status_subresource_and_printer_columns(
    k8s_api: client.ApiClient, objects: client.CustomObjectsApi, crd_namespace: str
) -> None:
    name = "columns"
    spec = merge_patch(CASES["base"], {"horizontal": {"minReplicas": 2}})
    objects.create_namespaced_custom_object(GROUP, VERSION, crd_namespace, PLURAL, policy(name, spec))
    try:
        status = {
            "observedGeneration": 1,
            "currentReplicas": 4,
            "desiredReplicas": 6,
            "lastScaleTime": "2026-11-27T22:00:00Z",
            "consecutiveFailures": 0,
            "currentMetrics": [
                {
                    "name": "cpu",
                    "type": "Resource",
                    "value": "72",
                    "target": "60",
                    "proposedReplicas": 6,
                    "error": "",
                }
            ],
            "recommendation": {
                "containerRecommendations": [
                    {
                        "containerName": "arena",
                        "target": {"cpu": "500m", "memory": "256Mi"},
                        "lowerBound": {"cpu": "250m", "memory": "128Mi"},
                        "upperBound": {"cpu": "1", "memory": "512Mi"},
                        "uncappedTarget": {"cpu": "500m", "memory": "256Mi"},
                    }
                ]
            },
            "lastDecision": {
                "time": "2026-11-27T22:00:00Z",
                "from": 4,
                "to": 6,
                "reason": "cpu above target",
                "limitedBy": "ScaleUpLimit",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Evaluated",
                    "message": "",
                    "lastTransitionTime": "2026-11-27T22:00:00Z",
                    "observedGeneration": 1,
                },
                {
                    "type": "ScalingLimited",
                    "status": "False",
                    "reason": "DesiredWithinRange",
                    "message": "the desired count is within the acceptable range",
                    "lastTransitionTime": "2026-11-27T22:00:00Z",
                },
            ],
        }
        current = objects.get_namespaced_custom_object(GROUP, VERSION, crd_namespace, PLURAL, name)
        current["status"] = status
        updated = objects.replace_namespaced_custom_object_status(
            GROUP, VERSION, crd_namespace, PLURAL, name, current, field_validation="Strict"
        )
        assert updated["status"] == status, "the status schema must keep every field the operator writes"
        # Spec changes through the main resource never touch status, and status writes never touch spec.
        assert updated["metadata"]["generation"] == 1

        table = _table(k8s_api, crd_namespace)
        columns = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
        assert columns == [
            ("Name", 0),
            ("Target", 0),
            ("Min", 0),
            ("Max", 0),
            ("Current", 0),
            ("Desired", 0),
            ("Ready", 0),
            ("Mode", 1),
            ("CPU", 1),
            ("Memory", 1),
            ("Age", 0),
        ]
        row = next(r["cells"] for r in table["rows"] if r["cells"][0] == name)
        assert row[:10] == [name, "arena", 2, 10, 4, 6, "True", "Active", "500m", "256Mi"]

        # A duplicate condition type breaks the list-map contract and is refused.
        current = objects.get_namespaced_custom_object_status(GROUP, VERSION, crd_namespace, PLURAL, name)
        current["status"]["conditions"].append(dict(status["conditions"][0]))
        with pytest.raises(ApiException) as info:
            objects.replace_namespaced_custom_object_status(
                GROUP, VERSION, crd_namespace, PLURAL, name, current
            )
        assert "status.conditions[2]: Duplicate value" in rejection(info.value)
    finally:
        objects.delete_namespaced_custom_object(GROUP, VERSION, crd_namespace, PLURAL, name)


def test_crd_shape(k8s_api: client.ApiClient, crd_installed: None) -> None:
    crd = client.ApiextensionsV1Api(k8s_api).read_custom_resource_definition(CRD_NAME)
    assert crd.spec.scope == "Namespaced"
    assert crd.spec.names.short_names == ["asp"]
    assert crd.spec.names.categories == ["surge"]
    (version,) = crd.spec.versions
    assert (version.name, version.served, version.storage) == (VERSION, True, True)
    assert version.subresources.status is not None
    assert version.subresources.scale is None

    def open_nodes(node: Any, path: str) -> Iterator[str]:
        """Paths of schema nodes that keep unknown fields."""
        if isinstance(node, dict):
            if node.get("x-kubernetes-preserve-unknown-fields"):
                yield path
            for key, value in node.items():
                yield from open_nodes(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                yield from open_nodes(item, f"{path}[]")

    schema = yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]["schema"]
    # Every field has a schema, except HPA's metric members, which are declared only so that a CEL rule
    # refuses them with the list of supported types (an unknown field would hide that message).
    metric = ".openAPIV3Schema.properties.spec.properties.horizontal.properties.metrics.items.properties"
    hpa_only = {f"{metric}.{m}" for m in ("external", "object", "containerResource")}
    assert set(open_nodes(schema, "")) == hpa_only, "every field must have a schema"


def test_default_kustomization_renders_a_locked_down_operator(testbed: conftest.Testbed) -> None:
    """manifests/default renders (with the test bed's own kubectl) into the shape the docs promise."""
    docs = [
        d for d in yaml.safe_load_all(testbed.kubectl("kustomize", str(ROOT / "manifests" / "default"))) if d
    ]
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert set(by_kind) == {
        ("Namespace", "surge-system"),
        ("CustomResourceDefinition", CRD_NAME),
        ("CustomResourceDefinition", f"autoscalepolicycheckpoints.{GROUP}"),  # decision-state checkpoints
        ("ServiceAccount", "surge-controller-manager"),
        ("ClusterRole", "surge-manager-role"),
        ("ClusterRoleBinding", "surge-manager-rolebinding"),
        ("Role", "surge-leader-election-role"),  # the Lease, in the operator's namespace only
        ("RoleBinding", "surge-leader-election-rolebinding"),
        ("PodDisruptionBudget", "surge-controller-manager"),
        ("NetworkPolicy", "surge-controller-manager"),
        ("Deployment", "surge-controller-manager"),
    }
    binding = by_kind[("ClusterRoleBinding", "surge-manager-rolebinding")]
    assert binding["roleRef"]["name"] == "surge-manager-role"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "surge-controller-manager", "namespace": "surge-system"}
    ]
    rules = by_kind[("ClusterRole", "surge-manager-role")]["rules"]
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules), "no wildcards"
    assert {"deployments/scale", "statefulsets/scale"} <= {res for r in rules for res in r["resources"]}
    # Template patch (Recreate modes) is an opt-in (manifests/recreate); the base role only reads workloads.
    for r in rules:
        if {"deployments", "statefulsets"} & set(r["resources"]):
            assert r["verbs"] == ["get"], r
        assert "update" not in r["verbs"] or r["resources"] == ["autoscalepolicycheckpoints"], r
    # /metrics on the pod's address (--metrics-bind-address), and only health + metrics let in.
    manager_pod = by_kind[("Deployment", "surge-controller-manager")]["spec"]["template"]["spec"]
    args = manager_pod["containers"][0]["args"]
    assert {"--metrics-port=8081", "--metrics-bind-address=0.0.0.0"} <= set(args)
    netpol = by_kind[("NetworkPolicy", "surge-controller-manager")]["spec"]
    assert netpol["policyTypes"] == ["Ingress", "Egress"]
    assert [{p["port"] for p in rule["ports"]} for rule in netpol["ingress"]] == [{8080, 8081}]

    deployment = by_kind[("Deployment", "surge-controller-manager")]
    assert deployment["metadata"]["namespace"] == "surge-system"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "surge-controller-manager"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "surge-operator:dev"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"requests", "limits"} <= set(container["resources"])
    probe = container["livenessProbe"]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (probe["path"], ports[probe["port"]]) == ("/healthz", 8080)
