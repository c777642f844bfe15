"""The Helm chart (charts/surge) with the pinned helm binary, on the real API server.

- `helm lint --strict` passes for the default and a non-default set of values; bad values are refused with
  a message that names the value.
- The rendering of both sets passes a server-side dry run (strict field validation). The cluster has no
  Prometheus Operator, so a small ServiceMonitor CRD written for this test (helm_servicemonitor_crd.yaml:
  exactly the fields the chart renders, no preserve-unknown-fields) is installed if none exists, and removed
  again if this test created it.
- `helm install` creates every object `helm template` renders (kinds, namespaces, names as the API server
  lists them); `helm uninstall` removes them all and leaves the CRDs, as Helm does.
- The chart and the kustomize install (manifests/default, manifests/recreate, manifests/namespaced) render
  the same objects and grant the same RBAC: (scope, apiGroup, resource, resourceName, verb) of every role
  bound to the operator's ServiceAccount, as sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import Testbed, fresh_namespace
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "surge"
SERVICEMONITOR_CRD = Path(__file__).parent / "helm_servicemonitor_crd.yaml"
SERVICEMONITOR_CRD_NAME = "servicemonitors.monitoring.coreos.com"
SA = "surge-controller-manager"
OPERATOR_NS = "surge-system"

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (kind, namespace or "", name)
Grant = tuple[str, str, str, str, str]  # (scope, apiGroup, resource, resourceName or "", verb)


@dataclass(frozen=True)
class Helm:
    binary: Path
    kubeconfig: Path
    home: Path  # helm's cache/config/data, kept out of the user's home

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.kubeconfig),
        }
        proc = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def template(self, values: Obj, *, release: str = "surge", namespace: str = OPERATOR_NS) -> str:
        return self.run(
            "template", release, str(CHART), "-n", namespace, "-f", self._values_file(values)
        ).stdout

    def _values_file(self, values: Obj) -> str:
        path = self.home / f"values-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(values))
        return str(path)


def _docs(text: str) -> list[Obj]:
    return [o for o in yaml.safe_load_all(text) if o]


def _key(o: Obj) -> Key:
    return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])


def _non_default(namespaces: list[str]) -> Obj:
    """Every switch away from its default: namespaced + recreate, ServiceMonitor, json logs, one replica."""
    return {
        "replicaCount": 1,
        "rbac": {"mode": "namespaced", "namespaces": namespaces, "recreate": True},
        "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "monitoring"}},
        "networkPolicy": {"enabled": True, "prometheus": {"namespace": "monitoring", "ports": [9090, 20090]}},
        "logFormat": "json",
        "verbose": True,
        "prometheus": {
            "url": "http://prom-label-proxy.monitoring.svc:9090",
            "allowedUrls": ["http://prometheus-b.monitoring.svc:9090"],
            "tenancy": "namespace",
        },
        "leaderElection": {"leaseName": "surge-operator-b", "leaseDuration": 15, "renewDeadline": 10},
        "image": {"repository": "surge-operator", "tag": "dev", "pullPolicy": "Never"},
        "extraEnv": [{"name": "SURGE_CHECKPOINT_SECONDS", "value": "30"}],
        "nodeSelector": {"type": "kwok"},
        "podAnnotations": {"example.com/owner": "team-games"},
    }


@pytest.fixture(scope="module")
def helm(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = testbed.bin_dir / "helm"
    assert binary.exists(), f"{binary} missing: run `bash testbed/build.sh helm`"
    return Helm(binary=binary, kubeconfig=testbed.kubeconfig, home=tmp_path_factory.mktemp("helm"))


@pytest.fixture
def release_ns(k8s_api: client.ApiClient) -> Iterator[str]:
    yield from fresh_namespace(k8s_api, "helm-")


@pytest.fixture
def watched(k8s_api: client.ApiClient) -> Iterator[list[str]]:
    a, b = fresh_namespace(k8s_api, "helm-a-"), fresh_namespace(k8s_api, "helm-b-")
    names = [next(a), next(b)]
    yield names
    for gen in (a, b):
        next(gen, None)  # runs the namespace's deletion


@pytest.fixture(scope="module")
def servicemonitor_crd(testbed: Testbed) -> Iterator[None]:
    """A ServiceMonitor CRD for the dry run and the install: the real one if installed, else the stand-in."""
    existing = testbed.kubectl("get", "crd", SERVICEMONITOR_CRD_NAME, "--ignore-not-found", "-o", "name")
    if not existing:
        testbed.kubectl("apply", "--server-side", "-f", str(SERVICEMONITOR_CRD))
        testbed.kubectl(
            "wait", "--for=condition=Established", f"crd/{SERVICEMONITOR_CRD_NAME}", "--timeout=60s"
        )
    yield
    if not existing:
        testbed.kubectl("delete", "-f", str(SERVICEMONITOR_CRD), "--ignore-not-found", "--wait=false")


# --- the binary and the chart's files ------------------------------------------------------------------


def test_helm_is_the_pinned_version(helm: Helm) -> None:
    pins = dict(
        line.split("=", 1)
        for line in (ROOT / "testbed" / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert helm.run("version", "--template", "{{.Version}}").stdout.strip() == pins["HELM_VERSION"]


def test_the_chart_crds_are_the_repository_crds(helm: Helm, tmp_path: Path) -> None:
    """One source: every CRD of crds/ is in the chart, byte for byte, also in the packaged chart."""
    ours = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml") if p.name != "kustomization.yaml"}
    assert ours, "no CRDs in crds/"
    in_chart = {p.name: p.read_bytes() for p in (CHART / "crds").iterdir()}
    assert in_chart == ours
    helm.run("package", str(CHART), "-d", str(tmp_path))
    (archive,) = tmp_path.glob("surge-*.tgz")
    with tarfile.open(archive) as tar:
        packaged = {}
        for member in tar.getmembers():
            if member.name.startswith("surge/crds/"):
                assert member.isfile(), f"{member.name} is not a regular file in the package"
                f = tar.extractfile(member)
                assert f is not None
                packaged[member.name.removeprefix("surge/crds/")] = f.read()
    assert packaged == ours


def _leaves(values: Obj, prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{path}.")
        else:
            yield path


def test_the_readme_lists_every_value() -> None:
    """Each value of values.yaml (or the map holding it, e.g. `resources`) has a row in the README."""
    readme = (CHART / "README.md").read_text()
    rows = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `")}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for leaf in _leaves(values):
        parts = leaf.split(".")
        if not any(".".join(parts[:n]) in rows for n in range(1, len(parts) + 1)):
            missing.append(leaf)
    assert not missing, f"not in charts/surge/README.md: {missing}"
    stale = sorted(
        r for r in rows if not any(leaf == r or leaf.startswith(f"{r}.") for leaf in _leaves(values))
    )
    assert not stale, f"README rows for values that do not exist: {stale}"


# --- lint and bad values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default", "non-default"])
def test_lint_passes(helm: Helm, which: str) -> None:
    values = {} if which == "default" else _non_default(["team-a", "team-b"])
    proc = helm.run("lint", "--strict", str(CHART), "-f", helm._values_file(values))
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rbac": {"mode": "everything"}}, "mode"),
        ({"rbac": {"mode": "namespaced"}}, "rbac.mode=namespaced needs the watched namespaces"),
        ({"rbac": {"namespaces": ["team-a"]}}, "rbac.namespaces is only used with rbac.mode=namespaced"),
        ({"rbac": {"mode": "namespaced", "namespaces": ["Team_A"]}}, "namespaces"),
        ({"rbac": {"mode": "namespaced", "namespaces": ["a", "a"]}}, "lists a namespace twice"),
        ({"leaderElection": {"renewDeadline": 10}}, "renewDeadline must be shorter"),
        ({"prometheus": {"tenancy": "tenant"}}, "tenancy"),
        ({"prometheus": {"url": "prometheus:9090"}}, "url"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"replicaCount": 0}, "replicaCount"),
        ({"metrics": {"port": 8080}}, "metrics.port and health.port must differ"),
        ({"imagee": {"tag": "x"}}, "imagee"),
    ],
)
def test_bad_values_are_refused_with_a_message(helm: Helm, values: Obj, message: str) -> None:
    proc = helm.run("template", "surge", str(CHART), "-f", helm._values_file(values), check=False)
    assert proc.returncode != 0, f"{values} was accepted"
    assert message in proc.stderr, proc.stderr


# --- the API server accepts what the chart renders ----------------------------------------------------


@pytest.mark.usefixtures("servicemonitor_crd")
@pytest.mark.parametrize("which", ["default", "non-default"])
def test_server_dry_run_accepts_the_rendering(
    testbed: Testbed, helm: Helm, release_ns: str, watched: list[str], which: str
) -> None:
    values = {} if which == "default" else _non_default(watched)
    text = helm.template(values, namespace=release_ns)
    objs = _docs(text)
    if which == "non-default":
        assert "ServiceMonitor" in {o["kind"] for o in objs}
    out = testbed.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", input_text=text)
    assert len([line for line in out.splitlines() if "(server dry run)" in line]) == len(objs), out


# --- install and uninstall ------------------------------------------------------------------------------


def _live(testbed: Testbed, manifest: Path) -> set[Key]:
    text = testbed.kubectl("get", "-f", str(manifest), "--ignore-not-found", "-o", "json")
    if not text.strip():
        return set()
    found = json.loads(text)
    items = found["items"] if found.get("kind") == "List" else [found]
    return {_key(o) for o in items}


@pytest.mark.usefixtures("servicemonitor_crd", "crd")
@pytest.mark.parametrize("which", ["default", "non-default"])
def test_install_creates_what_template_renders_and_uninstall_removes_it(
    testbed: Testbed, helm: Helm, release_ns: str, watched: list[str], which: str, tmp_path: Path
) -> None:
    values = {} if which == "default" else _non_default(watched)
    release = f"surge-{uuid.uuid4().hex[:6]}"  # cluster-scoped names (ClusterRoles) are unique per test
    rendered = _docs(helm.template(values, release=release, namespace=release_ns))
    for o in rendered:  # helm template omits the namespace nowhere it matters, but keep keys comparable
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            o["metadata"].setdefault("namespace", release_ns)
    expected = {_key(o) for o in rendered}

    # Helm 4 applies crds/ server-side: if the cluster's CRDs were applied by kubectl (`make install`, the
    # `crd` fixture) from a different revision of crds/, that conflicts on .spec.versions. The two ways out,
    # as the chart's README says: take the fields over (--force-conflicts) or leave them (--skip-crds).
    crd_flag = "--force-conflicts" if which == "default" else "--skip-crds"
    helm.run("install", release, str(CHART), "-n", release_ns, "-f", helm._values_file(values), crd_flag)
    try:
        manifest_text = helm.run("get", "manifest", release, "-n", release_ns).stdout
        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(manifest_text)
        assert {_key(o) for o in _docs(manifest_text)} == expected
        assert _live(testbed, manifest) == expected
        # The operator pod lands on a KWOK node (nodeSelector type=kwok in the non-default values).
        deploy = f"deployment/{release}-controller-manager"
        testbed.kubectl("rollout", "status", deploy, "-n", release_ns, "--timeout=60s")
    finally:
        helm.run("uninstall", release, "-n", release_ns, "--wait", "--timeout", "60s")
    wait_until(lambda: not _live(testbed, manifest), timeout=30, what=f"{release}'s objects deleted")
    assert helm.run("list", "-n", release_ns, "-q").stdout.strip() == ""
    for crd in ("autoscalepolicies", "autoscalepolicycheckpoints"):  # Helm never deletes CRDs
        assert testbed.kubectl("get", "crd", f"{crd}.autoscaling.surge.dev", "-o", "name")


# --- the same objects and RBAC as the kustomize install ------------------------------------------------


def _kustomize(testbed: Testbed, path: Path) -> list[Obj]:
    return _docs(testbed.kubectl("kustomize", str(path)))


def _grants(objs: list[Obj]) -> set[Grant]:
    """Every (scope, group, resource, name, verb) the roles bound to the operator's ServiceAccount give."""
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}
    out: set[Grant] = set()
    for b in objs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == SA and s["namespace"] == OPERATOR_NS
            for s in b["subjects"]
        ):
            continue
        ns = b["metadata"].get("namespace", "")
        ref = b["roleRef"]
        role = roles[(ref["kind"], ns if ref["kind"] == "Role" else "", ref["name"])]
        scope = ns or "cluster"
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for name in rule.get("resourceNames") or [""]:
                        out.update((scope, group, resource, name, verb) for verb in rule["verbs"])
    return out


def _manager(objs: list[Obj]) -> Obj:
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    container = {k: v for k, v in container.items() if k != "image"}  # surge-operator:dev vs appVersion
    container["env"] = sorted(container["env"], key=lambda e: e["name"])
    rest = {k: v for k, v in pod.items() if k not in ("containers", "affinity")}
    return {
        "replicas": deploy["spec"]["replicas"],
        "strategy": deploy["spec"]["strategy"],
        "pod": rest,
        "c": container,
    }


def _without_selectors(o: Obj) -> Obj:
    """The spec minus label selectors (the chart adds app.kubernetes.io/instance to them)."""
    spec = {k: v for k, v in o["spec"].items() if k not in ("selector", "podSelector")}
    return spec


def _namespaced_recreate(tmp: Path) -> Path:
    """manifests/namespaced with the recreate-namespaced component in both namespaces, as its comments say.

    (Paths relative: kustomize refuses absolute ones.)"""
    manifests = ROOT / "manifests"
    for ns in ("team-a", "team-b"):
        (tmp / ns).mkdir()
        up = Path(os.path.relpath(manifests, tmp / ns))
        (tmp / ns / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "namespace": ns,
                    "resources": [str(up / "namespaced" / "watched" / "base")],
                    "components": [str(up / "components" / "recreate-namespaced")],
                }
            )
        )
    up = Path(os.path.relpath(manifests, tmp))
    resources = [str(up / "crd"), str(up / "namespaced" / "operator"), "team-a", "team-b"]
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump({"resources": resources}))
    return tmp


NAMESPACED = {"mode": "namespaced", "namespaces": ["team-a", "team-b"]}


@pytest.mark.parametrize(
    ("kustomization", "values"),
    [
        ("default", {}),
        ("recreate", {"rbac": {"recreate": True}}),
        ("namespaced", {"rbac": NAMESPACED}),
        ("namespaced+recreate", {"rbac": {**NAMESPACED, "recreate": True}}),
    ],
)
def test_the_chart_renders_what_kustomize_renders(
    testbed: Testbed, helm: Helm, kustomization: str, values: Obj, tmp_path: Path
) -> None:
    if kustomization == "namespaced+recreate":
        path = _namespaced_recreate(tmp_path)
    else:
        path = ROOT / "manifests" / kustomization
    kust = _kustomize(testbed, path)
    chart = _docs(helm.template(values))
    for o in chart:
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            o["metadata"].setdefault("namespace", OPERATOR_NS)
    # The CRDs come from crds/ (test above); the chart does not own its release namespace (Helm's
    # --create-namespace does; NOTES.txt says how to label it for Pod Security).
    skipped = {"CustomResourceDefinition", "Namespace"}
    assert {_key(o) for o in chart} == {_key(o) for o in kust if o["kind"] not in skipped}

    assert _grants(chart) == _grants(kust)
    assert _manager(chart) == _manager(kust)
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        (ours,) = [o for o in chart if o["kind"] == kind]
        (theirs,) = [o for o in kust if o["kind"] == kind]
        assert _without_selectors(ours) == _without_selectors(theirs), kind
