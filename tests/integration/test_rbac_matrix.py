"""Least privilege as a matrix, on the real API server, for both installs.

1. The RBAC objects of manifests/default (cluster-wide) and manifests/namespaced (a list of namespaces) are
   applied for real, renamed into this test's own namespaces (cluster-scoped objects get a unique suffix),
   and `kubectl auth can-i --list --as=system:serviceaccount:...` is compared, per namespace, with an exact
   table: what the operator's ServiceAccount may do beyond what any authenticated user may do (the same
   question asked for a ServiceAccount without bindings) must equal the table, no more, no less.
2. `surge run` then runs as that ServiceAccount (a token kubeconfig) in each install, scales a Deployment on
   CPU, removes the legacy finalizer, reads the target (vertical Off), posts Events, writes status and a
   checkpoint, holds the Lease, and must log no refused request: everything it uses is granted.

The shared cluster holds other tests' policies, so the operator is always confined to this test's
namespaces (`--namespace` with exact names): kopf's scanning is then off, so no cluster-wide namespace or CRD
request is made, and no refused request is tolerated at all.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Testbed
from tests.support.wait import wait_until
from tests.support.workloads import USAGE_CPU, USAGE_MEMORY, deployment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SA = "surge-controller-manager"
RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
GROUP = "autoscaling.surge.dev"
LEGACY_FINALIZER = f"{GROUP}/finalizer"

Obj = dict[str, Any]
Row = tuple[str, str]  # (resource or non-resource URL, resource names as kubectl prints them)

# --- the tables: (resource as `kubectl auth can-i --list` names it, resourceNames) -> verbs --------------
IN_A_WATCHED_NAMESPACE: dict[Row, set[str]] = {
    ("autoscalepolicies.autoscaling.surge.dev", "[]"): {"list", "watch", "patch"},
    ("autoscalepolicies.autoscaling.surge.dev/status", "[]"): {"patch"},
    ("autoscalepolicycheckpoints.autoscaling.surge.dev", "[]"): {"get", "create", "update"},
    ("events", "[]"): {"create"},
    ("pods", "[]"): {"list"},
    ("pods/resize", "[]"): {"patch"},
    ("pods.metrics.k8s.io", "[]"): {"list"},
    ("deployments.apps/scale", "[]"): {"get", "patch"},
    ("statefulsets.apps/scale", "[]"): {"get", "patch"},
    ("deployments.apps", "[]"): {"get"},
    ("statefulsets.apps", "[]"): {"get"},
    ("horizontalpodautoscalers.autoscaling", "[]"): {"list", "watch"},
}
CRD_WATCH: dict[Row, set[str]] = {
    ("customresourcedefinitions.apiextensions.k8s.io", "[]"): {"list", "watch"},
}
LEASE: dict[Row, set[str]] = {
    ("leases.coordination.k8s.io", "[surge-operator]"): {"get", "update"},
    ("leases.coordination.k8s.io", "[]"): {"create"},
}


@dataclass(frozen=True)
class Install:
    name: str
    path: Path
    operator_ns: str
    mapping: dict[str, str]  # namespace in the manifests -> this test's namespace
    suffix: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.operator_ns}:{SA}"

    def ns(self, original: str) -> str:
        return self.mapping[original]


def _render(testbed: Testbed, path: Path) -> list[Obj]:
    return [o for o in yaml.safe_load_all(testbed.kubectl("kustomize", str(path))) if o]


def _renamed_rbac(objs: list[Obj], install: Install) -> list[Obj]:
    """The RBAC objects, moved into the test's namespaces; cluster-scoped names (and refs) made unique."""
    out = []
    for o in objs:
        if o["kind"] not in RBAC_KINDS:
            continue
        o = json.loads(json.dumps(o))
        meta = o["metadata"]
        if meta.get("namespace"):
            meta["namespace"] = install.ns(meta["namespace"])
        else:
            meta["name"] = f"{meta['name']}-{install.suffix}"
        for s in o.get("subjects") or []:
            s["namespace"] = install.ns(s["namespace"])
        ref = o.get("roleRef")
        if ref and ref["kind"] == "ClusterRole":
            ref["name"] = f"{ref['name']}-{install.suffix}"
        out.append(o)
    return out


def _can_i_list(testbed: Testbed, user: str, namespace: str) -> dict[Row, set[str]]:
    """`kubectl auth can-i --list` parsed by the header's column offsets (verbs merged per row key)."""
    text = testbed.kubectl("auth", "can-i", "--list", "-n", namespace, f"--as={user}")
    lines = text.splitlines()
    header = lines[0]
    starts = [header.index(col) for col in ("Resources", "Non-Resource URLs", "Resource Names", "Verbs")]
    table: dict[Row, set[str]] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        resource, url, names, verbs = cells
        key = (resource or url, names)
        table.setdefault(key, set()).update(verbs.strip("[]").split())
    return table


def _granted(testbed: Testbed, install: Install, namespace: str) -> dict[Row, set[str]]:
    """What the operator may do in `namespace` beyond a ServiceAccount with no bindings at all."""
    ours = _can_i_list(testbed, install.user, namespace)
    nobody = _can_i_list(testbed, f"system:serviceaccount:{install.operator_ns}:nobody", namespace)
    for key, verbs in nobody.items():
        assert verbs <= ours.get(key, set()), f"{key}: the operator lacks what everyone has"
    extra = {key: verbs - nobody.get(key, set()) for key, verbs in ours.items()}
    return {key: verbs for key, verbs in extra.items() if verbs}


def _create_namespace(testbed: Testbed, name: str) -> None:
    testbed.kubectl("create", "namespace", name)
    wait_until(
        lambda: testbed.kubectl("get", "serviceaccount", "default", "-n", name, check=False) != "",
        timeout=30,
        what=f"default service account in {name}",
    )


@pytest.fixture
def installs(testbed: Testbed, crd: Path) -> Iterator[tuple[Install, Install]]:
    """Both installs' RBAC applied for real in fresh namespaces; everything deleted afterwards."""
    suffix = uuid.uuid4().hex[:6]
    cw = Install(
        "cluster-wide",
        ROOT / "manifests" / "default",
        f"rbacm-cw-{suffix}",
        {"surge-system": f"rbacm-cw-{suffix}", "tenant": f"rbacm-cwt-{suffix}"},
        f"cw-{suffix}",
    )
    nsd = Install(
        "namespaced",
        ROOT / "manifests" / "namespaced",
        f"rbacm-ns-{suffix}",
        {
            "surge-system": f"rbacm-ns-{suffix}",
            "team-a": f"rbacm-a-{suffix}",
            "team-b": f"rbacm-b-{suffix}",
            "unwatched": f"rbacm-x-{suffix}",
        },
        f"ns-{suffix}",
    )
    created: list[str] = []
    applied: list[Obj] = []
    try:
        for install in (cw, nsd):
            for ns in install.mapping.values():
                _create_namespace(testbed, ns)
                created.append(ns)
            testbed.kubectl("create", "serviceaccount", "nobody", "-n", install.operator_ns)
            objs = _renamed_rbac(_render(testbed, install.path), install)
            applied += objs
            testbed.kubectl(
                "apply", "--server-side", "--field-manager=surge-rbac-matrix", "-f", "-",
                input_text=yaml.safe_dump_all(objs),
            )  # fmt: skip
        yield cw, nsd
    finally:
        for o in applied:
            if not o["metadata"].get("namespace"):  # the namespaces take the rest with them
                testbed.kubectl("delete", o["kind"], o["metadata"]["name"], "--wait=false", check=False)
        for ns in created:
            testbed.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_the_manifests_bind_only_what_the_tables_say(testbed: Testbed) -> None:
    """The installs' RBAC objects: the cluster-wide one has one ClusterRole, the namespaced one none."""
    default = _render(testbed, ROOT / "manifests" / "default")
    namespaced = _render(testbed, ROOT / "manifests" / "namespaced")
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    assert {o["metadata"]["name"] for o in default if o["kind"] == "ClusterRole"} == {"surge-manager-role"}
    assert not [o for o in namespaced if o["kind"] in cluster_scoped], "the namespaced install is Roles only"
    # The Recreate opt-in adds exactly template patch on Deployments and StatefulSets.
    recreate = _render(testbed, ROOT / "manifests" / "recreate")
    extra = [o for o in recreate if o not in default]
    assert {(o["kind"], o["metadata"]["name"]) for o in extra} == {
        ("ClusterRole", "surge-recreate-role"),
        ("ClusterRoleBinding", "surge-recreate-rolebinding"),
    }
    (role,) = [o for o in extra if o["kind"] == "ClusterRole"]
    assert role["rules"] == [
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["patch"]}
    ]
    (binding,) = [o for o in extra if o["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SA, "namespace": "surge-system"}]


def test_can_i_list_equals_the_tables(testbed: Testbed, installs: tuple[Install, Install]) -> None:
    cw, nsd = installs
    # Cluster-wide: the same in every namespace (a tenant's, and any other), plus the Lease in its own.
    tenant = cw.ns("tenant")
    assert _granted(testbed, cw, tenant) == IN_A_WATCHED_NAMESPACE | CRD_WATCH
    assert _granted(testbed, cw, nsd.ns("unwatched")) == IN_A_WATCHED_NAMESPACE | CRD_WATCH
    assert _granted(testbed, cw, cw.operator_ns) == IN_A_WATCHED_NAMESPACE | CRD_WATCH | LEASE
    # Namespaced: the table in each watched namespace, the Lease in its own, nothing anywhere else.
    for team in ("team-a", "team-b"):
        assert _granted(testbed, nsd, nsd.ns(team)) == IN_A_WATCHED_NAMESPACE, team
    assert _granted(testbed, nsd, nsd.operator_ns) == LEASE
    assert _granted(testbed, nsd, nsd.ns("unwatched")) == {}
    assert _granted(testbed, nsd, tenant) == {}


# --- the operator as the ServiceAccount ---------------------------------------------------------------------
def _token_kubeconfig(testbed: Testbed, install: Install, path: Path) -> Path:
    token = testbed.kubectl("create", "token", SA, "-n", install.operator_ns, "--duration=1h").strip()
    admin = json.loads(testbed.kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster = admin["clusters"][0]["cluster"]
    ca = (
        cluster.get("certificate-authority-data")
        or base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    )
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "t", "cluster": {"server": cluster["server"], "certificate-authority-data": ca}}
                ],
                "users": [{"name": SA, "user": {"token": token}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": SA}}],
                "current-context": "t",
            }
        )
    )
    path.chmod(0o600)
    return path


def _policy(name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "AutoScalePolicy",
        # The finalizer Surge 0.1 added: the operator must remove it (its `patch` on policies).
        "metadata": {"name": name, "finalizers": [LEGACY_FINALIZER]},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "interval": "2s",
            "horizontal": {
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
            },
            # Recommend only: reads the target's pod template (its `get` on deployments), writes nothing.
            "vertical": {"updateMode": "Off", "containerPolicies": [{"containerName": "app"}]},
        },
    }


def _apply(testbed: Testbed, namespace: str, obj: Obj) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(obj))


def _get(testbed: Testbed, namespace: str, kind: str, name: str) -> Obj | None:
    out = testbed.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out else None


def _refusals(log: str, tolerated: tuple[re.Pattern[str], ...]) -> list[str]:
    refused = re.compile(r"\b403\b|forbidden|not enough permissions", re.IGNORECASE)
    return [
        line
        for line in log.splitlines()
        if refused.search(line) and not any(t.search(line) for t in tolerated)
    ]


def _run_operator_until_it_scaled(
    testbed: Testbed,
    install: Install,
    namespaces: list[str],
    tmp_path: Path,
    tolerated: tuple[re.Pattern[str], ...],
) -> None:
    kubeconfig = _token_kubeconfig(testbed, install, tmp_path / f"{install.name}.kubeconfig")
    for ns in namespaces:
        _apply(
            testbed,
            ns,
            deployment(
                "web", replicas=1, cpu_request="100m",
                pod_annotations={USAGE_CPU: "200m", USAGE_MEMORY: "32Mi"},
            ),
        )  # fmt: skip
        _apply(testbed, ns, {**_policy("web")})
    log_path = tmp_path / f"{install.name}.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "SURGE_WATCH_TIMEOUT": "10",
        "SURGE_CHECKPOINT_SECONDS": "2",
        "SURGE_LEADER_ELECTION": "true",
        "POD_NAMESPACE": install.operator_ns,  # the Lease's namespace, as in a pod
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    args = [
        sys.executable, "-m", "surge.cli", "run",
        "--kubeconfig", str(kubeconfig),
        "--prometheus-url", testbed.prometheus_url,
        *(a for ns in namespaces for a in ("--namespace", ns)),
    ]  # fmt: skip
    with log_path.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:

        def done(ns: str) -> bool:
            assert proc.poll() is None, "the operator exited:\n" + log_path.read_text()[-3000:]
            dep = _get(testbed, ns, "deployment", "web") or {}
            policy = _get(testbed, ns, "autoscalepolicy", "web") or {}
            checkpoints = testbed.kubectl("get", "autoscalepolicycheckpoints", "-n", ns, "-o", "name")
            events = testbed.kubectl(
                "get", "events", "-n", ns, "--field-selector", "reason=SuccessfulRescale"
            )
            return (
                dep.get("spec", {}).get("replicas", 0) > 1
                and LEGACY_FINALIZER not in (policy.get("metadata", {}).get("finalizers") or [])
                and bool(policy.get("status", {}).get("conditions"))
                and bool(checkpoints.strip())
                and "SuccessfulRescale" in events
            )

        for ns in namespaces:
            wait_until(
                functools.partial(done, ns), timeout=120, what=f"{install.name}: scaled, checkpointed in {ns}"
            )
        lease = _get(testbed, install.operator_ns, "lease", "surge-operator") or {}
        assert lease.get("spec", {}).get("holderIdentity"), "the operator holds the Lease"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = log_path.read_text()
    assert not _refusals(log, tolerated), "refused requests:\n" + "\n".join(_refusals(log, tolerated))
    for ns in namespaces:
        policy = _get(testbed, ns, "autoscalepolicy", "web") or {}
        text = json.dumps(policy.get("status", {}))
        assert not re.search(r"\b403\b|forbidden", text, re.IGNORECASE), f"{ns}: {text}"
        events = testbed.kubectl("get", "events", "-n", ns, "-o", "json")
        assert not re.search(r"\b403\b|forbidden", events, re.IGNORECASE), f"{ns}: a refusal in the Events"


@pytest.mark.timeout(600)
def test_the_operator_runs_with_exactly_these_rights(
    testbed: Testbed, installs: tuple[Install, Install], tmp_path: Path
) -> None:
    cw, nsd = installs
    # Cluster-wide role, operator confined to one namespace of its own (see the module docstring).
    # Exact namespace names: kopf's scanning is off, so nothing may be refused at all.
    _run_operator_until_it_scaled(testbed, cw, [cw.ns("tenant")], tmp_path, ())
    _run_operator_until_it_scaled(testbed, nsd, [nsd.ns("team-a"), nsd.ns("team-b")], tmp_path, ())
