"""Shared fixtures: the real local control plane (started on demand) and per-test namespaces.

Integration and e2e tests ask for `testbed`, `kubeconfig` or `k8s_api`. When a cluster is already up (or
SURGE_KUBECONFIG names one), it is reused and left running; otherwise the session starts it with
testbed/cluster.sh and stops it at the end. A missing or broken test bed fails the tests loudly: it never
turns them into skips.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kopf.testing import KopfRunner
from kubernetes import client, config

from surge_testbed.env import read_env
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "testbed" / "cluster.sh"
CRD = ROOT / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml"
CHECKPOINT_CRD = ROOT / "crds" / "autoscaling.surge.dev_autoscalepolicycheckpoints.yaml"


@dataclass(frozen=True)
class Testbed:
    __test__ = False  # not a test class, despite the name
    kubeconfig: Path
    prometheus_url: str
    targets_dir: Path
    bin_dir: Path

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        """Runs the test bed's own kubectl (same version as the server) and returns stdout."""
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=input_text,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


def _cluster(cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CLUSTER_SH), cmd], capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def testbed() -> Iterator[Testbed]:
    env = read_env()
    kubeconfig = os.environ.get("SURGE_KUBECONFIG") or str(env.kubeconfig)
    started_here = False
    if "SURGE_KUBECONFIG" not in os.environ and _cluster("status").returncode != 0:
        # Stream the bring-up (and a possible cold build) so a long wait shows progress.
        proc = subprocess.run(["bash", str(CLUSTER_SH), "up"], check=False)
        if proc.returncode != 0:
            pytest.fail(
                "could not start the embedded cluster (testbed/cluster.sh up failed); "
                "run 'make cluster-up' to see why",
                pytrace=False,
            )
        started_here = True
    yield Testbed(
        kubeconfig=Path(kubeconfig),
        prometheus_url=os.environ.get("SURGE_PROMETHEUS_URL") or env.prometheus_url,
        targets_dir=env.targets_dir,
        bin_dir=env.bin_dir,
    )
    if started_here and os.environ.get("SURGE_KEEP_CLUSTER") != "1":
        _cluster("down")


@pytest.fixture(scope="session")
def kubeconfig(testbed: Testbed) -> Path:
    return testbed.kubeconfig


@pytest.fixture(scope="session")
def k8s_api(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def fresh_namespace(k8s_api: client.ApiClient, prefix: str) -> Iterator[str]:
    """A new namespace `<prefix><random>` once pods can be admitted; deleted afterwards (not awaited)."""
    core = client.CoreV1Api(k8s_api)
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The service account controller must create 'default' before pods can be admitted.
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        timeout=30,
        what=f"default service account in {name}",
    )
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(k8s_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test (watched by the session's operator: "t-*")."""
    yield from fresh_namespace(k8s_api, "t-")


@pytest.fixture(scope="session")
def crd(testbed: Testbed) -> Path:
    # The operator keeps each policy's decision state in a checkpoint object: both CRDs, like `make install`.
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD), "-f", str(CHECKPOINT_CRD))
    for name in ("autoscalepolicies", "autoscalepolicycheckpoints"):
        testbed.kubectl(
            "wait", "--for=condition=Established", f"crd/{name}.autoscaling.surge.dev", "--timeout=60s"
        )
    return CRD


@pytest.fixture(scope="session")
def operator(testbed: Testbed, crd: Path) -> Iterator[KopfRunner]:
    """One operator for the session, configured only through its environment, like in production."""
    env = {
        "KUBECONFIG": str(testbed.kubeconfig),
        "SURGE_PROMETHEUS_URL": testbed.prometheus_url,
        "SURGE_WATCH_TIMEOUT": "10",  # lets the runner stop within seconds
        "SURGE_EVENT_REPEAT_SECONDS": "600",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # Only the namespaces of operator and e2e tests: the CRD validation tests write objects and statuses of
    # their own, which an operator must not touch (it would add its finalizer and write status).
    args = ["run", "--namespace", "t-*", "--namespace", "e2e-*", "--standalone", "-m", "surge.handlers"]
    runner = KopfRunner(args, timeout=60)
    with runner:  # returns once kopf reports that the operator is ready
        yield runner
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    assert runner.exception is None, runner.output[-4000:]
