"""The fault suite's own cluster, started and stopped by this session; never the shared one.

Faults kill control-plane components, so these tests run on a second embedded cluster ("faults",
Prometheus on 127.0.0.1:19190 by default) that `testbed/cluster.sh` brings up side by side with the shared
one; `testbed/faults.sh` stops and restarts its components. Each test gets a namespace `f-<random>` and starts
its own `surge run` processes (tests/faults/operator_process.py), so SIGKILL is real.

Env: FAULTS_CLUSTER_NAME (default faults), FAULTS_PROMETHEUS_PORT (default 19190), SURGE_KEEP_CLUSTER=1 keeps
the cluster after the session (the next session reuses it).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.faults.history import ScaleHistory
from tests.faults.operator_process import OperatorProcess
from tests.faults.series import MutableSeries
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "testbed" / "cluster.sh"
FAULTS_SH = ROOT / "testbed" / "faults.sh"
NAME = os.environ.get("FAULTS_CLUSTER_NAME", "faults")
PROM_PORT = os.environ.get("FAULTS_PROMETHEUS_PORT", "19190")
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
    "prometheus",
)
MEASUREMENTS = ROOT / "out" / "faults" / "measurements.json"

if NAME == "surge":
    raise RuntimeError("the fault suite must never run against the shared cluster 'surge'")


def _env() -> dict[str, str]:
    return {**os.environ, "SURGE_CLUSTER_NAME": NAME, "SURGE_PROMETHEUS_PORT": PROM_PORT, "SURGE_NODES": "2"}


@dataclass
class FaultCluster:
    kubeconfig: Path
    prometheus_url: str
    targets_dir: Path
    bin_dir: Path
    api: client.ApiClient
    measured: dict[str, Any] = field(default_factory=dict)

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def fault(self, action: str, component: str) -> float:
        """Runs testbed/faults.sh ACTION COMPONENT; returns time.monotonic() once down / serving."""
        proc = subprocess.run(
            ["bash", str(FAULTS_SH), action, component],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"faults.sh {action} {component} failed:\n{proc.stderr[-3000:]}")
        return time.monotonic()

    def component_up(self, component: str) -> bool:
        proc = subprocess.run(
            ["bash", str(FAULTS_SH), "status", component],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return proc.returncode == 0

    def settle_control_plane(self, since: datetime, timeout: float = 40) -> None:
        """After an API server or etcd outage, kube-controller-manager and kube-scheduler either renew their
        Leases or exit (lost leadership): wait for one or the other, and restart what exited, so the next
        test does not find its pods unscheduled."""
        coordination = client.CoordinationV1Api(self.api)

        def renewed(component: str) -> bool:
            if not self.component_up(component):
                self.fault("start", component)
                return False
            lease = coordination.read_namespaced_lease(component, "kube-system", _request_timeout=3)
            return bool(lease.spec.renew_time and lease.spec.renew_time > since)

        for component in ("kube-controller-manager", "kube-scheduler"):
            wait_until(
                lambda c=component: renewed(c), timeout=timeout, what=f"{component} to renew its Lease"
            )

    def measure(self, key: str, value: Any) -> None:
        """Keeps a number for docs/faults.md (written to out/faults/measurements.json at the end)."""
        self.measured[key] = value
        print(f"[measured] {key} = {value}")


@pytest.fixture(scope="session")
def faults_cluster() -> Iterator[FaultCluster]:
    proc = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=_env(), check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"could not start the fault suite's cluster '{NAME}' (testbed/cluster.sh up)", pytrace=False
        )
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "env"], env=_env(), capture_output=True, text=True, check=True
    )
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    cluster = FaultCluster(
        kubeconfig=Path(env["SURGE_KUBECONFIG"]),
        prometheus_url=env["SURGE_PROMETHEUS_URL"],
        targets_dir=Path(env["SURGE_PROMETHEUS_TARGETS"]),
        bin_dir=Path(env["SURGE_BIN_DIR"]),
        api=config.new_client_from_config(config_file=env["SURGE_KUBECONFIG"]),
    )
    # Every CRD of the project (policies, and checkpoints once they exist), not the kustomization file.
    extensions = client.ApiextensionsV1Api(cluster.api)
    for crd in sorted((ROOT / "crds").glob("*_*.yaml")):
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
        name = yaml.safe_load(crd.read_text())["metadata"]["name"]
        wait_until(
            lambda name=name: any(
                c.type == "Established" and c.status == "True"
                for c in (extensions.read_custom_resource_definition(name).status.conditions or [])
            ),
            timeout=60,
            what=f"CRD {name} Established",
        )
    try:
        yield cluster
    finally:
        MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.exists() else {}
        MEASUREMENTS.write_text(json.dumps({**previous, **cluster.measured}, indent=2, sort_keys=True) + "\n")
        if os.environ.get("SURGE_KEEP_CLUSTER") != "1":
            subprocess.run(["bash", str(CLUSTER_SH), "down"], env=_env(), check=False)


@pytest.fixture(autouse=True)
def all_components_up(request: pytest.FixtureRequest) -> None:
    """A test that failed half-way may leave a component down: bring everything back before the next one."""
    if "faults_cluster" not in request.fixturenames:
        return
    cluster: FaultCluster = request.getfixturevalue("faults_cluster")
    for component in COMPONENTS:
        if not cluster.component_up(component):
            cluster.fault("start", component)


@pytest.fixture
def api(faults_cluster: FaultCluster) -> client.ApiClient:
    return faults_cluster.api


def _strip_policy_finalizers(cluster: FaultCluster, namespace: str) -> None:
    """Harness clean-up: a finalizer left by an older operator must not keep the namespace Terminating."""
    custom = client.CustomObjectsApi(cluster.api)
    try:
        items = custom.list_namespaced_custom_object(
            "autoscaling.surge.dev", "v1alpha1", namespace, "autoscalepolicies"
        )["items"]
    except client.ApiException:
        return
    for item in items:
        if item["metadata"].get("finalizers"):
            with contextlib.suppress(client.ApiException):
                custom.patch_namespaced_custom_object(
                    "autoscaling.surge.dev",
                    "v1alpha1",
                    namespace,
                    "autoscalepolicies",
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )


def new_namespace(cluster: FaultCluster) -> str:
    core = client.CoreV1Api(cluster.api)
    name = f"f-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        timeout=30,
        what=f"default service account in {name}",
    )
    return name


@pytest.fixture
def namespaces(faults_cluster: FaultCluster) -> Iterator[Callable[[], str]]:
    """Factory of fresh `f-*` namespaces (watched by the test's operators); deleted afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(new_namespace(faults_cluster))
        return made[-1]

    yield make
    core = client.CoreV1Api(faults_cluster.api)
    for ns in made:
        _strip_policy_finalizers(faults_cluster, ns)
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(ns, propagation_policy="Background")


@pytest.fixture
def namespace(namespaces: Callable[[], str]) -> str:
    return namespaces()


@pytest.fixture
def operators(
    faults_cluster: FaultCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., OperatorProcess]]:
    """Factory of `surge run` processes; all stopped at the end, their logs shown if the test failed."""
    started: list[OperatorProcess] = []

    def start(identity: str = "", lease: tuple[str, str] | None = None, **kwargs: Any) -> OperatorProcess:
        op = OperatorProcess(
            kubeconfig=faults_cluster.kubeconfig,
            prometheus_url=faults_cluster.prometheus_url,
            log_path=tmp_path / f"operator-{identity or len(started)}.log",
            identity=identity,
            lease=lease,
            **kwargs,
        )
        op.start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()
        print(f"--- log of operator {op.identity or op.log_path.name} (last lines)\n{op.tail(6000)}")


@pytest.fixture
def series(faults_cluster: FaultCluster) -> Iterator[Callable[[str, float], MutableSeries]]:
    made: list[MutableSeries] = []

    def make(namespace: str, value: float) -> MutableSeries:
        made.append(MutableSeries(faults_cluster.targets_dir, "surge_fault_demand", namespace, value))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def histories(api: client.ApiClient) -> Iterator[Callable[[str, str], ScaleHistory]]:
    made: list[ScaleHistory] = []

    def make(namespace: str, name: str) -> ScaleHistory:
        made.append(ScaleHistory(api, namespace, name).start())
        return made[-1]

    yield make
    for h in made:
        h.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault injection on the fault suite's own embedded cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fault tests run only when asked for (a path under tests/faults, or SURGE_FAULTS=1): `pytest tests`
    (make test) must not start a second cluster and kill its components for ten minutes."""
    here = Path(__file__).parent.resolve()
    asked = os.environ.get("SURGE_FAULTS") == "1" or any(
        here in (Path(str(a).split("::")[0]).resolve(), *Path(str(a).split("::")[0]).resolve().parents)
        for a in config.args
    )
    if asked:
        return
    keep = [i for i in items if here not in Path(str(i.fspath)).resolve().parents]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
