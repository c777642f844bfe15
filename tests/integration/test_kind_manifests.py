"""The kind overlay (manifests/kind and manifests/kind/load) against the real local API server.

kind itself and Docker are not available here, so this is what can be proven without them:
- the overlay renders with kubectl's kustomize, and every rendered object is accepted by kube-apiserver in a
  server-side dry run (schema with strict field validation, admission incl. Pod Security "restricted" for
  every pod template, RBAC objects, the APIService, the AutoScalePolicy against the CRD's schema and CEL);
- the security properties we promise: non-root, no privilege escalation, read-only root filesystem, all
  capabilities dropped, resources set, no host access, RBAC without wildcards or secrets;
- the wiring between the pieces: the operator's Prometheus URL and liveness port, Prometheus' discovery
  namespaces vs its Roles, scrape annotations and port names, the downward-API capacity file, the policy's
  target and metric names, the load Job's pod discovery vs its RBAC and the game pods' labels;
- the images the manifests use match the Dockerfiles (names, non-root UID).

The dry run must not depend on what other tests or the demo left in the shared cluster, so every namespace
of the rendered objects is renamed to a fresh one (created for real, labelled `restricted`, deleted at the
end); cluster-scoped objects keep their names (the dry run writes nothing). The CRD is applied for real by
the session's `crd` fixture, because a custom resource needs its type to exist even in a dry run.
"""

from __future__ import annotations

import asyncio
import copy
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import config
from surge_game import vocabulary as v
from surge_loadgen.real import Fleet, PodDiscovery, parse_k8s_target

from surge.kube import request
from surge.leader import KubeLeaseApi, LeaderElector
from tests.conftest import Testbed
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KIND = ROOT / "manifests" / "kind"
LOAD = KIND / "load"

Obj = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
LOCAL_IMAGES = {"surge-operator:dev", "surge-game:dev", "surge-loadgen:dev"}
# Built-in roles the overlay binds to (they exist in every cluster, kind included).
BUILTIN_ROLES = {
    ("ClusterRole", "system:auth-delegator"),
    ("Role", "extension-apiserver-authentication-reader"),
}


@dataclass(frozen=True)
class Rendered:
    stack: list[Obj]  # manifests/kind
    load: list[Obj]  # manifests/kind/load

    @property
    def all(self) -> list[Obj]:
        return self.stack + self.load

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        found = [
            o
            for o in self.all
            if o["kind"] == kind
            and o["metadata"]["name"] == name
            and o["metadata"].get("namespace") == namespace
        ]
        assert len(found) == 1, f"expected exactly one {kind} {namespace}/{name}, found {len(found)}"
        return found[0]

    def has(self, kind: str, name: str, namespace: str | None = None) -> bool:
        return any(
            o["kind"] == kind
            and o["metadata"]["name"] == name
            and o["metadata"].get("namespace") == namespace
            for o in self.all
        )


def _render(testbed: Testbed, path: Path) -> list[Obj]:
    return [o for o in yaml.safe_load_all(testbed.kubectl("kustomize", str(path))) if o]


@pytest.fixture(scope="module")
def rendered(testbed: Testbed) -> Rendered:
    return Rendered(stack=_render(testbed, KIND), load=_render(testbed, LOAD))


def _pod_specs(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for o in objs:
        if o["kind"] in WORKLOADS:
            yield o, o["spec"]["template"]["spec"]


def _containers(pod: Obj) -> list[Obj]:
    return [*(pod.get("initContainers") or []), *pod["containers"]]


def _container(obj: Obj, name: str) -> Obj:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def _ref(obj: Obj) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace') or '-'}/{obj['metadata']['name']}"


# --- what is there -----------------------------------------------------------------------------------------
def test_overlay_has_every_piece(rendered: Rendered) -> None:
    expected = [
        ("Namespace", "surge-system", None),
        ("Namespace", "games", None),
        ("Namespace", "monitoring", None),
        ("CustomResourceDefinition", "autoscalepolicies.autoscaling.surge.dev", None),
        ("Deployment", "surge-controller-manager", "surge-system"),
        ("ClusterRole", "surge-manager-role", None),
        ("Deployment", "metrics-server", "kube-system"),
        ("Service", "metrics-server", "kube-system"),
        ("APIService", "v1beta1.metrics.k8s.io", None),
        ("ConfigMap", "prometheus-config", "monitoring"),
        ("Deployment", "prometheus", "monitoring"),
        ("Service", "prometheus", "monitoring"),
        ("Deployment", "arena", "games"),
        ("AutoScalePolicy", "arena", "games"),
    ]
    for kind, name, namespace in expected:
        assert rendered.has(kind, name, namespace), f"{kind} {namespace}/{name} missing from manifests/kind"
    assert [o["kind"] for o in rendered.load] == ["ServiceAccount", "Role", "RoleBinding", "Job"]
    # Every namespaced object lives in a namespace the overlay creates (or kube-system).
    created = {o["metadata"]["name"] for o in rendered.stack if o["kind"] == "Namespace"}
    for o in rendered.all:
        ns = o["metadata"].get("namespace")
        assert ns is None or ns in created | {"kube-system"}, (
            f"{_ref(o)}: namespace not created by the overlay"
        )


# --- security ----------------------------------------------------------------------------------------------
def test_every_container_is_non_root_and_locked_down(rendered: Rendered) -> None:
    pods = list(_pod_specs(rendered.all))
    assert len(pods) == 5  # operator, metrics-server, prometheus, arena, loadgen
    for obj, pod in pods:
        where = _ref(obj)
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        assert not [vol for vol in pod.get("volumes") or [] if "hostPath" in vol], f"{where}: hostPath volume"
        pod_sc = pod.get("securityContext") or {}
        for c in _containers(pod):
            sc = c.get("securityContext") or {}
            at = f"{where} container {c['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, f"{at}: runAsNonRoot"
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert isinstance(uid, int), f"{at}: runAsUser must be set, got {uid!r}"
            assert uid > 0, f"{at}: runAsUser must not be root"
            assert sc.get("allowPrivilegeEscalation") is False, f"{at}: allowPrivilegeEscalation"
            assert not sc.get("privileged"), f"{at}: privileged"
            assert sc.get("readOnlyRootFilesystem") is True, f"{at}: readOnlyRootFilesystem"
            assert (sc.get("capabilities") or {}).get("drop") == ["ALL"], f"{at}: capabilities.drop [ALL]"
            assert not (sc.get("capabilities") or {}).get("add"), f"{at}: capabilities.add"
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
            assert seccomp.get("type") == "RuntimeDefault", f"{at}: seccompProfile RuntimeDefault"
            requests = (c.get("resources") or {}).get("requests") or {}
            limits = (c.get("resources") or {}).get("limits") or {}
            assert {"cpu", "memory"} <= requests.keys(), f"{at}: cpu and memory requests"
            assert "memory" in limits, f"{at}: memory limit"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1], f"{at}: image without a tag"
            assert not image.endswith(":latest"), f"{at}: image tag latest"
            if image in LOCAL_IMAGES:  # `kind load`ed, never pulled: Always would fail on a registry lookup
                assert c.get("imagePullPolicy") == "IfNotPresent", f"{at}: imagePullPolicy IfNotPresent"


def _rules(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for o in objs:
        if o["kind"] in ("Role", "ClusterRole"):
            for rule in o.get("rules") or []:
                yield o, rule


def test_rbac_is_least_privilege(rendered: Rendered) -> None:
    for role, rule in _rules(rendered.all):
        for field in ("verbs", "resources", "apiGroups"):
            assert "*" not in (rule.get(field) or []), f"{_ref(role)}: wildcard {field}"
        assert "secrets" not in rule.get("resources", []), f"{_ref(role)}: secrets"
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), f"{_ref(role)}: escalation verbs"
        assert not rule.get("nonResourceURLs"), f"{_ref(role)}: non-resource URLs"
    # Bindings point at roles that exist (in the overlay, or built in) and at service accounts of the overlay.
    service_accounts = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in rendered.all
        if o["kind"] == "ServiceAccount"
    }
    for b in (o for o in rendered.all if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert rendered.has(ref["kind"], ref["name"], ns) or (ref["kind"], ref["name"]) in BUILTIN_ROLES, (
            _ref(b)
        )
        for s in b["subjects"]:
            assert s["kind"] == "ServiceAccount", f"{_ref(b)}: binds {s['kind']} {s['name']}"
            assert (s["namespace"], s["name"]) in service_accounts, f"{_ref(b)}: unknown subject {s}"
    # Every pod runs as its own service account, or mounts no token at all.
    for obj, pod in _pod_specs(rendered.all):
        sa = pod.get("serviceAccountName")
        if sa:
            assert (obj["metadata"]["namespace"], sa) in service_accounts, f"{_ref(obj)}: unknown SA {sa}"
        else:
            assert pod.get("automountServiceAccountToken") is False, f"{_ref(obj)}: default SA with a token"
    # The two cluster-wide roles the overlay adds beyond the operator's: read-only, and only what they need.
    ms = rendered.get("ClusterRole", "system:metrics-server")
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in ms["rules"])
    assert not [o for o in rendered.all if o["kind"] == "ClusterRole"] or {
        o["metadata"]["name"] for o in rendered.all if o["kind"] == "ClusterRole"
    } == {"surge-manager-role", "system:metrics-server"}


# --- wiring ------------------------------------------------------------------------------------------------
def _arg_value(args: list[str], flag: str) -> str:
    for i, a in enumerate(args):
        if a == flag:
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


def _service_for_url(rendered: Rendered, url: str) -> tuple[Obj, int]:
    parsed = urlparse(url)
    assert parsed.hostname, url
    assert parsed.port, url
    name, namespace, *_ = parsed.hostname.split(".")
    return rendered.get("Service", name, namespace), parsed.port


def _named_port(container: Obj, name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == name_or_number))


def test_operator_wiring(rendered: Rendered) -> None:
    op = rendered.get("Deployment", "surge-controller-manager", "surge-system")
    manager = _container(op, "manager")
    assert manager["image"] == "surge-operator:dev"
    args = manager["args"]
    assert args[0] == "run"
    # PromQL goes to the in-cluster Prometheus Service, on a port it serves.
    service, port = _service_for_url(rendered, _arg_value(args, "--prometheus-url"))
    assert port in [p["port"] for p in service["spec"]["ports"]]
    prom = rendered.get("Deployment", "prometheus", "monitoring")
    assert service["spec"]["selector"].items() <= prom["spec"]["template"]["metadata"]["labels"].items()
    # kopf serves the liveness endpoint the probe asks for.
    liveness = urlparse(_arg_value(args, "--liveness"))
    probe = manager["livenessProbe"]["httpGet"]
    assert (liveness.path, liveness.port) == (probe["path"], _named_port(manager, probe["port"]))
    # Its /metrics is on the port Prometheus scrapes.
    assert int(_arg_value(args, "--metrics-port")) == _named_port(manager, "metrics")
    assert op["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_operator_runs_two_replicas_with_one_active(rendered: Rendered) -> None:
    op = rendered.get("Deployment", "surge-controller-manager", "surge-system")
    spec = op["spec"]
    manager = _container(op, "manager")
    env = {e["name"]: e for e in manager.get("env") or []}
    assert spec["replicas"] == 2
    # Leader election on, by flag or environment (an overlay's args patch replaces the whole list).
    assert "--leader-elect" in manager["args"] or env["SURGE_LEADER_ELECTION"]["value"] == "true"
    # The Lease lives in the pod's own namespace, which the pod learns from the downward API.
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # A rollout never has fewer than two pods; the old leader releases the Lease on SIGTERM.
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # A drain takes one replica at a time.
    pdb = rendered.get("PodDisruptionBudget", "surge-controller-manager", "surge-system")
    assert pdb["spec"]["minAvailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"].items() <= op["spec"]["template"]["metadata"]["labels"].items()
    )
    # Memory from the measured start-up peak at 1,000 new policies (152 MB, bench/RESULTS.md round 3).
    resources = manager["resources"]
    assert (resources["requests"]["memory"], resources["limits"]["memory"]) == ("256Mi", "512Mi")
    # The Lease's Role is namespaced (the operator's namespace), bound to the operator's service account.
    role = rendered.get("Role", "surge-leader-election-role", "surge-system")
    assert {(tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]} == {
        (("leases",), ("get", "update")),
        (("leases",), ("create",)),
    }
    binding = rendered.get("RoleBinding", "surge-leader-election-rolebinding", "surge-system")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "surge-leader-election-role",
    }
    sa = op["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "surge-system"}]


def test_metrics_server_wiring(rendered: Rendered) -> None:
    ms = _container(rendered.get("Deployment", "metrics-server", "kube-system"), "metrics-server")
    assert ms["image"] == "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
    assert "--kubelet-insecure-tls" in ms["args"]
    secure_port = int(_arg_value(ms["args"], "--secure-port"))
    assert _named_port(ms, "https") == secure_port
    api = rendered.get("APIService", "v1beta1.metrics.k8s.io")
    svc_ref = api["spec"]["service"]
    svc = rendered.get("Service", svc_ref["name"], svc_ref["namespace"])
    assert svc_ref["port"] in [p["port"] for p in svc["spec"]["ports"]]


def test_prometheus_discovers_what_it_may_list(rendered: Rendered) -> None:
    config = yaml.safe_load(
        rendered.get("ConfigMap", "prometheus-config", "monitoring")["data"]["prometheus.yml"]
    )
    (job,) = config["scrape_configs"]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    namespaces = sd["namespaces"]["names"]
    assert set(namespaces) == {"games", "surge-system"}
    prom = rendered.get("Deployment", "prometheus", "monitoring")
    sa = prom["spec"]["template"]["spec"]["serviceAccountName"]
    for ns in namespaces:  # a RoleBinding in each namespace gives the SA list+watch on pods
        granted = [
            rendered.get("Role", b["roleRef"]["name"], ns)
            for b in rendered.all
            if b["kind"] == "RoleBinding"
            and b["metadata"]["namespace"] == ns
            and {"namespace": "monitoring", "name": sa, "kind": "ServiceAccount"} in b["subjects"]
        ]
        verbs = {
            verb for role in granted for r in role["rules"] if "pods" in r["resources"] for verb in r["verbs"]
        }
        assert {"list", "watch"} <= verbs, f"prometheus cannot discover pods in {ns}"
    relabel = {tuple(r.get("source_labels", [])): r for r in job["relabel_configs"]}
    assert relabel[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]["regex"] == "true"
    assert relabel[("__meta_kubernetes_pod_container_port_name",)]["regex"] == "metrics"
    # The game pods opt in, on a port of that name.
    arena = rendered.get("Deployment", "arena", "games")
    assert arena["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert _named_port(_container(arena, "arena"), "metrics") == 9100


def test_game_server_wiring(rendered: Rendered) -> None:
    arena = rendered.get("Deployment", "arena", "games")
    pod = arena["spec"]["template"]["spec"]
    c = _container(arena, "arena")
    assert c["image"] == "surge-game:dev"
    assert c["resources"]["requests"]["cpu"] == "500m"
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # CPU_REQUEST_FILE is the downward-API file of this container's CPU request, in millicores.
    path = Path(env["CPU_REQUEST_FILE"]["value"])
    mount = next(m for m in c["volumeMounts"] if path.is_relative_to(m["mountPath"]))
    volume = next(vol for vol in pod["volumes"] if vol["name"] == mount["name"])
    item = next(i for i in volume["downwardAPI"]["items"] if Path(mount["mountPath"], i["path"]) == path)
    assert item["resourceFieldRef"] == {"containerName": "arena", "resource": "requests.cpu", "divisor": "1m"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"game": 7000, "metrics": 9100}
    assert env["GAME_HOST"]["value"] == "0.0.0.0"


def test_policy_targets_the_fleet_with_the_game_vocabulary(rendered: Rendered) -> None:
    policy = rendered.get("AutoScalePolicy", "arena", "games")
    ref = policy["spec"]["scaleTargetRef"]
    assert rendered.has(ref["kind"], ref["name"], "games")
    buffer = next(m["buffer"] for m in policy["spec"]["horizontal"]["metrics"] if m["type"] == "Buffer")
    assert v.PLAYERS_ONLINE in buffer["usedQuery"]
    assert v.JOIN_REJECTED_TOTAL in buffer["usedQuery"]
    assert v.CAPACITY_PLAYERS in buffer["capacityQuery"]


def _loadgen_command(job: Obj) -> list[str]:
    """The `surge-loadgen run ...` command line of the Job's shell script (its first command)."""
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    return shlex.split(script.replace("\\\n", " ").splitlines()[0])


def test_load_job_discovers_the_game_pods_it_may_list(rendered: Rendered) -> None:
    job = next(o for o in rendered.load if o["kind"] == "Job")
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    c = pod["containers"][0]
    assert c["image"] == "surge-loadgen:dev"
    words = _loadgen_command(job)
    assert words[:4] == ["surge-loadgen", "run", "--plane", "real"]
    namespace, selector = _arg_value(words, "--servers-from-k8s").split("/", 1)
    # The selector matches the game pods (and not the loadgen's own pod).
    wanted = dict(pair.split("=", 1) for pair in selector.split(","))
    arena = rendered.get("Deployment", namespace=namespace, name="arena")
    assert wanted.items() <= arena["spec"]["template"]["metadata"]["labels"].items()
    assert not wanted.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    # Its own service account may list pods there, and nothing else.
    sa = pod["serviceAccountName"]
    binding = next(o for o in rendered.load if o["kind"] == "RoleBinding")
    assert binding["metadata"]["namespace"] == namespace
    assert {"kind": "ServiceAccount", "name": sa, "namespace": job["metadata"]["namespace"]} in binding[
        "subjects"
    ]
    role = rendered.get("Role", binding["roleRef"]["name"], namespace)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    # The output folder is a writable volume (the root filesystem is read-only).
    out = _arg_value(words, "--out")
    assert any(Path(out).is_relative_to(m["mountPath"]) for m in c["volumeMounts"])


# --- the images --------------------------------------------------------------------------------------------
def _dockerfile(path: Path) -> dict[str, list[str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.setdefault(word.upper(), []).append(rest.strip())
    return out


@pytest.mark.parametrize(
    ("dockerfile", "image", "entrypoint"),
    [
        ("Dockerfile", "surge-operator:dev", '["surge"]'),
        ("gameserver/Dockerfile", "surge-game:dev", '["python", "-m", "surge_game"]'),
        ("loadgen/Dockerfile", "surge-loadgen:dev", '["surge-loadgen"]'),
    ],
)
def test_images_match_the_dockerfiles(
    rendered: Rendered, dockerfile: str, image: str, entrypoint: str
) -> None:
    df = _dockerfile(ROOT / dockerfile)
    # Pinned to a Python patch release and a Debian release, never a moving tag.
    (base,) = df["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert df["ENTRYPOINT"] == [entrypoint]
    (user,) = df["USER"]
    uid = int(user.split(":")[0])
    assert uid != 0
    assert "dev" not in " ".join(df.get("RUN", [])), "runtime images install no dev extras"
    if image != "surge-game:dev":  # the game server installs nothing; the others only from their lock
        installs = [r for r in df.get("RUN", []) if r.startswith("pip install")]
        assert installs[0].startswith("pip install --require-hashes"), installs
        assert all("--require-hashes" in r or "--no-deps" in r for r in installs), installs
        (lock,) = [c.split()[0] for c in df["COPY"] if c.split()[0].endswith(".lock")]
        assert (ROOT / lock).is_file(), lock
        assert "--hash=sha256:" in (ROOT / lock).read_text()
    if image == "surge-loadgen:dev":  # it plots: matplotlib comes from the plots extra
        assert "[plots]" in " ".join(df["RUN"])
        assert "matplotlib==" in (ROOT / "requirements" / "loadgen.lock").read_text()
    if image == "surge-operator:dev":
        assert "matplotlib==" not in (ROOT / "requirements" / "operator.lock").read_text()
    users = {
        (pod.get("securityContext") or {}).get("runAsUser")
        for _, pod in _pod_specs(rendered.all)
        for c in pod["containers"]
        if c["image"] == image
    }
    assert users == {uid}, f"{image}: pods run as {users}, the image's USER is {uid}"


def test_kind_cluster_config() -> None:
    config = yaml.safe_load((KIND / "kind-cluster.yaml").read_text())
    assert (config["apiVersion"], config["kind"]) == ("kind.x-k8s.io/v1alpha4", "Cluster")
    roles = [n["role"] for n in config["nodes"]]
    assert roles.count("control-plane") == 1
    assert roles.count("worker") >= 1


# --- the API server accepts every object -------------------------------------------------------------------
def _namespaced_copy(objs: list[Obj], mapping: dict[str, str]) -> list[Obj]:
    """A copy of `objs` with every namespace (object, binding subject, APIService service) renamed."""
    out = copy.deepcopy(objs)
    for o in out:
        meta = o["metadata"]
        if o["kind"] == "Namespace":
            meta["name"] = mapping[meta["name"]]
        if meta.get("namespace"):
            meta["namespace"] = mapping[meta["namespace"]]
        for s in o.get("subjects") or []:
            if s.get("namespace"):
                s["namespace"] = mapping[s["namespace"]]
        if o["kind"] == "APIService":
            o["spec"]["service"]["namespace"] = mapping[o["spec"]["service"]["namespace"]]
    return out


@pytest.fixture
def fresh_namespaces(testbed: Testbed, rendered: Rendered, crd: Path) -> Iterator[dict[str, str]]:
    """Every namespace the overlay uses, renamed to a fresh one and created for real (restricted PSA)."""
    suffix = uuid.uuid4().hex[:6]
    used = {o["metadata"]["name"] for o in rendered.all if o["kind"] == "Namespace"}
    used |= {o["metadata"]["namespace"] for o in rendered.all if o["metadata"].get("namespace")}
    mapping = {ns: f"t-kind-{ns}-{suffix}" for ns in sorted(used)}
    created: list[str] = []
    try:
        for ns in mapping.values():
            testbed.kubectl("create", "namespace", ns)
            created.append(ns)
            # enforce + warn: the dry run of a workload reports pod templates that break the restricted level.
            testbed.kubectl(
                "label",
                "namespace",
                ns,
                "pod-security.kubernetes.io/enforce=restricted",
                "pod-security.kubernetes.io/warn=restricted",
            )
        yield mapping
    finally:
        for ns in created:
            testbed.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _dry_run(testbed: Testbed, objs: list[Obj]) -> subprocess.CompletedProcess[str]:
    """`kubectl apply --server-side --dry-run=server` of `objs` (what scripts/kind-demo.sh applies, unsaved).

    Run directly (not through Testbed.kubectl) because the warnings on stderr matter even when it succeeds.
    """
    return subprocess.run(
        [
            str(testbed.bin_dir / "kubectl"),
            "--kubeconfig",
            str(testbed.kubeconfig),
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=surge-kind-dry-run",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ],
        input=yaml.safe_dump_all(objs, sort_keys=False),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_server_side_dry_run_accepts_every_object(
    testbed: Testbed, rendered: Rendered, fresh_namespaces: dict[str, str]
) -> None:
    for name, objs in (("manifests/kind", rendered.stack), ("manifests/kind/load", rendered.load)):
        renamed = _namespaced_copy(objs, fresh_namespaces)
        proc = _dry_run(testbed, renamed)
        out, err = proc.stdout, proc.stderr
        assert proc.returncode == 0, f"server-side dry run of {name} failed:\n{err}"
        assert "PodSecurity" not in err, f"{name}: a pod template breaks the restricted level:\n{err}"
        lines = [line for line in out.splitlines() if line.endswith("(server dry run)")]
        assert len(lines) == len(objs), f"{name}: {len(objs)} objects, the server answered:\n{out}\n{err}"
        for o in renamed:
            assert any(f"/{o['metadata']['name']} " in line for line in lines), f"{_ref(o)} not in:\n{out}"


def _apply_for_real(testbed: Testbed, objs: list[Obj]) -> None:
    testbed.kubectl(
        "apply",
        "--server-side",
        "--field-manager=surge-kind-test",
        "-f",
        "-",
        input_text=yaml.safe_dump_all(objs, sort_keys=False),
    )


def _can_i(testbed: Testbed, who: str, verb: str, resource: str, namespace: str) -> bool:
    answer = testbed.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={who}", check=False)
    return answer.strip() == "yes"


def _elect_and_release(api: Any, namespace: str) -> None:
    """One elector with the operator's real Lease name: it must create, renew and release it."""

    async def main() -> None:
        elector = LeaderElector(KubeLeaseApi(api, namespace, "surge-operator"), "rbac-check")
        stop = asyncio.Event()
        task = asyncio.create_task(elector.run(stop))
        async with asyncio.timeout(10):
            await elector.wait_until_leader()
        stop.set()
        await task

    asyncio.run(main())
    lease = request(api, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/surge-operator")
    assert lease["spec"]["holderIdentity"] == "", "the elector could not release its Lease"


def test_namespaced_rbac_is_enough_and_no_more(
    testbed: Testbed, rendered: Rendered, fresh_namespaces: dict[str, str]
) -> None:
    """The namespaced RBAC applied for real (in the fresh namespaces) and asked with `kubectl auth can-i
    --as`; then the loadgen's own discovery, as its service account, finds the game pods (run by KWOK)."""
    m = fresh_namespaces
    objs = _namespaced_copy(rendered.all, m)
    rbac = [
        o
        for o in objs
        if o["kind"] in ("ServiceAccount", "Role", "RoleBinding")
        and o["metadata"]["namespace"] in (m["games"], m["monitoring"], m["surge-system"])
    ]
    arena = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "arena")
    _apply_for_real(testbed, [*rbac, arena])

    loadgen = f"system:serviceaccount:{m['games']}:surge-loadgen"
    prometheus = f"system:serviceaccount:{m['monitoring']}:prometheus"
    assert _can_i(testbed, loadgen, "list", "pods", m["games"])
    for verb, resource, ns in [
        ("watch", "pods", m["games"]),
        ("get", "pods", m["games"]),
        ("list", "pods", m["surge-system"]),
        ("list", "secrets", m["games"]),
        ("patch", "pods", m["games"]),
    ]:
        assert not _can_i(testbed, loadgen, verb, resource, ns), f"loadgen may {verb} {resource} in {ns}"
    # The operator's Lease: get/update of its own Lease and create, in its own namespace; nothing more.
    operator = f"system:serviceaccount:{m['surge-system']}:surge-controller-manager"
    for verb in ("get", "update", "create"):
        assert _can_i(testbed, operator, verb, "leases.coordination.k8s.io/surge-operator", m["surge-system"])
    for verb, resource, ns in [
        ("update", "leases.coordination.k8s.io/other", m["surge-system"]),
        ("delete", "leases.coordination.k8s.io/surge-operator", m["surge-system"]),
        ("patch", "leases.coordination.k8s.io/surge-operator", m["surge-system"]),
        ("list", "leases.coordination.k8s.io", m["surge-system"]),
        ("create", "leases.coordination.k8s.io", m["games"]),
        ("get", "leases.coordination.k8s.io/surge-operator", "kube-system"),
    ]:
        assert not _can_i(testbed, operator, verb, resource, ns), f"operator may {verb} {resource} in {ns}"
    # ...and with exactly those rights the elector acquires and releases it (as the service account).
    as_operator = config.new_client_from_config(config_file=str(testbed.kubeconfig))  # type: ignore[no-untyped-call]
    as_operator.set_default_header("Impersonate-User", operator)
    _elect_and_release(as_operator, m["surge-system"])
    for ns in (m["games"], m["surge-system"]):
        assert _can_i(testbed, prometheus, "list", "pods", ns)
        assert _can_i(testbed, prometheus, "watch", "pods", ns)
        assert not _can_i(testbed, prometheus, "list", "secrets", ns)
    assert not _can_i(testbed, prometheus, "list", "pods", m["monitoring"])

    # The Job's discovery, as the Job's service account, against the game pods.
    job = next(o for o in rendered.load if o["kind"] == "Job")
    words = _loadgen_command(job)
    namespace, selector = parse_k8s_target(_arg_value(words, "--servers-from-k8s"))
    api = config.new_client_from_config(config_file=str(testbed.kubeconfig))  # type: ignore[no-untyped-call]
    api.set_default_header("Impersonate-User", loadgen)
    discover = PodDiscovery(api, m[namespace], selector)
    replicas = arena["spec"]["replicas"]

    def fleet() -> Fleet | None:
        found = discover()
        return found if len(found.addresses) == replicas else None

    found = wait_until(fleet, timeout=60, what=f"{replicas} Ready game pods found by the loadgen's discovery")
    assert found is not None
    assert found.pods == replicas
    assert {port for _, port in found.addresses} == {7000}
