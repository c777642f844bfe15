"""The bench cluster from the admin side: the operator's own identity, the workloads, clean-up."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.kube import MERGE_PATCH, api_client, request
from surge_testbed import workloads
from surge_testbed.env import TestbedEnv
from surge_testbed.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
CRDS = (
    REPO / "crds/autoscaling.surge.dev_autoscalepolicies.yaml",
    REPO / "crds/autoscaling.surge.dev_autoscalepolicycheckpoints.yaml",
)
CACHE = Path(os.environ.get("SURGE_CACHE_DIR", "~/.cache/surge")).expanduser()

# The operator runs as its own ServiceAccount so the API server can attribute its requests (a FlowSchema
# matching only that user); the admin certificate used for set-up lands in the `exempt` schema instead.
SYSTEM_NS = "surge-bench-system"
SERVICE_ACCOUNT = "surge-operator"
FLOW_SCHEMA = "surge-operator"
POLICY_API = "/apis/autoscaling.surge.dev/v1alpha1"


class Admin:
    """kubectl and raw API calls with the cluster's admin kubeconfig."""

    def __init__(self, testbed: TestbedEnv) -> None:
        self.kubeconfig = str(testbed.kubeconfig)
        self.bin_dir = testbed.bin_dir
        self.api: client.ApiClient = api_client(self.kubeconfig)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def apply(self, docs: Iterable[dict[str, Any]]) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def text(self, path: str) -> str:
        """GET a non-JSON endpoint (e.g. /metrics)."""
        params = self.api.param_serialize(
            method="GET",
            resource_path=path,
            header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*params, _request_timeout=60)
        data: bytes = response.read()  # type: ignore[no-untyped-call]
        return data.decode()

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return request(self.api, method, path, timeout=60, **kwargs)

    def items(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("GET", path).get("items", [])
        return items


def server_version(admin: Admin) -> str:
    return str(admin.json("GET", "/version")["gitVersion"])


def operator_kubeconfig(admin: Admin, path: Path, role: str) -> Path:
    """CRDs, ServiceAccount bound to `role`, FlowSchema for it; writes a token kubeconfig to `path`."""
    # Both CRDs, as `make install`: the operator keeps each policy's decision state in a checkpoint object.
    admin.kubectl("apply", "--server-side", "--force-conflicts", *(a for c in CRDS for a in ("-f", str(c))))
    for crd in ("autoscalepolicies", "autoscalepolicycheckpoints"):
        admin.kubectl("wait", "--for=condition=Established", f"crd/{crd}.autoscaling.surge.dev")
    if role == "manager-role":  # the operator's least-privilege role as shipped
        admin.kubectl("apply", "--server-side", "-f", str(REPO / "manifests/rbac/role.yaml"))
    admin.apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NS}},
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": SYSTEM_NS},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "surge-bench-operator"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": SYSTEM_NS}],
            },
            {
                # Exempt priority level: the operator's demand is measured, not shaped by APF queueing.
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
                "kind": "FlowSchema",
                "metadata": {"name": FLOW_SCHEMA},
                "spec": {
                    "matchingPrecedence": 500,
                    "priorityLevelConfiguration": {"name": "exempt"},
                    "rules": [
                        {
                            "subjects": [
                                {
                                    "kind": "ServiceAccount",
                                    "serviceAccount": {"name": SERVICE_ACCOUNT, "namespace": SYSTEM_NS},
                                }
                            ],
                            "resourceRules": [
                                {
                                    "verbs": ["*"],
                                    "apiGroups": ["*"],
                                    "resources": ["*"],
                                    "clusterScope": True,
                                    "namespaces": ["*"],
                                }
                            ],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                        }
                    ],
                },
            },
        ]
    )
    token = admin.kubectl("create", "token", SERVICE_ACCOUNT, "-n", SYSTEM_NS, "--duration=24h").strip()
    admin_cfg = json.loads(admin.kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster = admin_cfg["clusters"][0]["cluster"]
    ca = (
        cluster.get("certificate-authority-data")
        or base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    )
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "bench", "cluster": {"server": cluster["server"], "certificate-authority-data": ca}}
        ],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": SERVICE_ACCOUNT}}],
        "current-context": "bench",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path


def deployment(name: str) -> dict[str, Any]:
    """One tiny replica on a KWOK node, using half of its 10m CPU request (50% < the 60% target)."""
    return workloads.deployment(
        name,
        replicas=1,
        cpu_request="10m",
        memory_request="16Mi",
        pod_annotations={workloads.USAGE_CPU: "5m", workloads.USAGE_MEMORY: "8Mi"},
        node_selector={"type": "kwok"},
    )


def policy(name: str, target: str, variant: str, interval: str) -> dict[str, Any]:
    """cpu: Resource Utilization (GET scale + LIST pods + LIST pod metrics); prometheus: one PromQL query."""
    if variant == "cpu":
        metric: dict[str, Any] = {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
        }
    else:
        metric = {
            "type": "Prometheus",
            "prometheus": {
                "query": 'sum(up{job="prometheus"})',
                "target": {"type": "AverageValue", "averageValue": "2"},
            },
        }
    return {
        "apiVersion": "autoscaling.surge.dev/v1alpha1",
        "kind": "AutoScalePolicy",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "interval": interval,
            "horizontal": {"minReplicas": 1, "maxReplicas": 3, "metrics": [metric]},
        },
    }


def names(n: int) -> list[tuple[str, str]]:
    """(policy, deployment) names."""
    return [(f"p-{i:05d}", f"d-{i:05d}") for i in range(n)]


def create_workloads(admin: Admin, namespace: str, n: int, variant: str, interval: str) -> None:
    admin.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])

    def create(pair: tuple[str, str]) -> None:
        pol, dep = pair
        admin.json("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body=deployment(dep))
        admin.json(
            "POST",
            f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies",
            body=policy(pol, dep, variant, interval),
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, names(n)))


def policy_count(admin: Admin, namespace: str) -> int:
    try:
        return len(admin.items(f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies"))
    except ApiException:
        return 0


def clear_statuses(admin: Admin, namespace: str) -> None:
    """Empties every policy's status, so the next operator starts as on freshly created policies."""

    def clear(p: dict[str, Any]) -> None:
        name = p["metadata"]["name"]
        admin.json(
            "PATCH",
            f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies/{name}/status",
            body={"status": None},
            content_type=MERGE_PATCH,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(clear, admin.items(f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies")))


def ready_deployments(admin: Admin, namespace: str) -> int:
    deployments = admin.items(f"/apis/apps/v1/namespaces/{namespace}/deployments")
    return sum(1 for d in deployments if (d.get("status") or {}).get("readyReplicas", 0) >= 1)


def pods_with_metrics(admin: Admin, namespace: str) -> int:
    try:
        return len(admin.items(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"))
    except ApiException:
        return 0


def policies_with_status(admin: Admin, namespace: str) -> int:
    policies = admin.items(f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies")
    return sum(1 for p in policies if (p.get("status") or {}).get("conditions"))


def delete_namespace(admin: Admin, namespace: str, timeout: float = 600) -> None:
    """Deletes the namespace; the operator is gone by now, so kopf's finalizers are removed by hand."""
    try:
        policies = admin.items(f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies")
    except ApiException as exc:
        if exc.status == 404:
            return
        raise

    def strip(p: dict[str, Any]) -> None:
        if p["metadata"].get("finalizers"):
            admin.json(
                "PATCH",
                f"{POLICY_API}/namespaces/{namespace}/autoscalepolicies/{p['metadata']['name']}",
                body={"metadata": {"finalizers": None}},
                content_type=MERGE_PATCH,
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(strip, policies))
    try:
        admin.json("DELETE", f"/api/v1/namespaces/{namespace}")
    except ApiException as exc:
        if exc.status != 404:
            raise

    def gone() -> bool:
        try:
            admin.json("GET", f"/api/v1/namespaces/{namespace}")
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_until(gone, timeout=timeout, what=f"namespace {namespace} to be deleted", interval=3.0)


def bench_namespaces(admin: Admin) -> list[str]:
    """Namespaces this benchmark creates (scale-<variant>-<n>), e.g. left by an interrupted run."""
    return [
        ns["metadata"]["name"]
        for ns in admin.items("/api/v1/namespaces")
        if ns["metadata"]["name"].startswith("scale-")
    ]


COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")


def dead_components(cluster: str) -> list[str]:
    """Control-plane processes of the kwokctl cluster that are gone. kube-scheduler and the controller
    manager exit when they lose their leader lease (CPU starvation at 1,000 policies on 2 cores can do it),
    and kwokctl's binary runtime does not restart them: pods then stay Pending."""
    dead = []
    for component in COMPONENTS:
        pid_file = CACHE / "kwok" / "clusters" / cluster / "pids" / f"{component}.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), 0)
        except (OSError, ValueError):
            dead.append(component)
    return dead


def control_plane_pids(cluster: str) -> dict[str, int]:
    """kube-apiserver / etcd PIDs of the kwokctl cluster (for their CPU while the window runs)."""
    out = {}
    for component in ("kube-apiserver", "etcd"):
        pid_file = CACHE / "kwok" / "clusters" / cluster / "pids" / f"{component}.pid"
        if pid_file.exists():
            out[component] = int(pid_file.read_text().strip())
    return out
