"""The bench cluster from the admin side (kubectl + raw JSON), the operator process, and the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from surge.kube import api_client, request
from surge_testbed.env import TestbedEnv
from surge_testbed.wait import StopWaitingError, WaitTimeoutError, wait_until

REPO = Path(__file__).resolve().parents[2]
# Both CRDs, as `make install`: the operator keeps each policy's decision state in a checkpoint object.
CRDS = (
    REPO / "crds" / "autoscaling.surge.dev_autoscalepolicies.yaml",
    REPO / "crds" / "autoscaling.surge.dev_autoscalepolicycheckpoints.yaml",
)


class Admin:
    """kubectl and raw API calls with the cluster's admin kubeconfig."""

    def __init__(self, testbed: TestbedEnv) -> None:
        self.testbed = testbed
        self.api: client.ApiClient = api_client(str(testbed.kubeconfig))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [str(self.testbed.bin_dir / "kubectl"), "--kubeconfig", str(self.testbed.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def apply(self, docs: Iterable[dict[str, Any]]) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def get(self, path: str) -> Any:
        return request(self.api, "GET", path, timeout=30)

    def try_get(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def install_crds(self) -> None:
        files = [arg for crd in CRDS for arg in ("-f", str(crd))]
        self.kubectl("apply", "--server-side", "--force-conflicts", *files)
        for crd in ("autoscalepolicies", "autoscalepolicycheckpoints"):
            self.kubectl(
                "wait", "--for=condition=Established", f"crd/{crd}.autoscaling.surge.dev", "--timeout=60s"
            )

    def create_namespaces(self, names: Sequence[str]) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names)
        for n in names:
            path = f"/api/v1/namespaces/{n}/serviceaccounts/default"
            wait_until(partial(self.exists, path), timeout=60, what=f"default ServiceAccount in {n}")

    def exists(self, path: str) -> bool:
        return self.try_get(path) is not None

    def ready_replicas(self, namespace: str, deployment: str) -> int:
        dep = self.try_get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}") or {}
        return int((dep.get("status") or {}).get("readyReplicas") or 0)

    def policy_status(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.try_get(
            f"/apis/autoscaling.surge.dev/v1alpha1/namespaces/{namespace}/autoscalepolicies/{name}"
        )
        return dict((obj or {}).get("status") or {})

    def delete_namespaces(self, names: Sequence[str], timeout: float = 180.0) -> None:
        if not names:
            return
        self.kubectl("delete", "namespace", "--ignore-not-found", "--wait=false", *names, check=False)
        with contextlib.suppress(WaitTimeoutError):
            wait_until(
                lambda: all(self.try_get(f"/api/v1/namespaces/{n}") is None for n in names),
                timeout=timeout,
                what="namespaces gone",
                interval=2.0,
            )

    def dump(self, namespace: str, out: Path) -> None:
        """Autoscaler objects, the Deployment and the Events of one namespace, for the record."""
        out.mkdir(parents=True, exist_ok=True)
        kinds = "deployments,horizontalpodautoscalers,autoscalepolicies.autoscaling.surge.dev"
        (out / "objects.yaml").write_text(
            self.kubectl("-n", namespace, "get", kinds, "-o", "yaml", check=False)
        )
        (out / "events.txt").write_text(
            self.kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp", check=False)
        )

    def server_version(self) -> str:
        try:
            return str(self.get("/version").get("gitVersion", "?"))
        except (ApiException, OSError):
            return "?"


class Operator:
    """One `surge run` process for every Surge contender (all their namespaces)."""

    def __init__(
        self, testbed: TestbedEnv, namespaces: Sequence[str], metrics_port: int, log_path: Path
    ) -> None:
        self.cmd = [sys.executable, "-m", "surge", "run", "--kubeconfig", str(testbed.kubeconfig)]
        self.cmd += ["--prometheus-url", testbed.prometheus_url, "--metrics-port", str(metrics_port)]
        for ns in namespaces:
            self.cmd += ["-n", ns]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO
            )

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise StopWaitingError(f"the operator exited with {self.proc.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class LoadSampler:
    """1-minute load average every `every` seconds, in a daemon thread (the machine is shared)."""

    every: float = 5.0
    values: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loadavg", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.values.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every + 1)
        if not self.values:
            return {}
        return {
            "mean": round(sum(self.values) / len(self.values), 2),
            "max": round(max(self.values), 2),
            "samples": len(self.values),
        }


def versions(admin: Admin) -> dict[str, str]:
    pinned = dict(
        line.split("=", 1)
        for line in (REPO / "testbed" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )

    def pkg(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    try:
        prom = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, check=False)
        prom_version = (prom.stdout + prom.stderr).split()[2]
    except (OSError, IndexError):
        prom_version = "?"
    return {
        "kubernetes": admin.server_version(),
        "etcd": pinned.get("ETCD_VERSION", "?"),
        "kwok": pinned.get("KWOK_VERSION", "?"),
        "metrics_server": pinned.get("METRICS_SERVER_VERSION", "?"),
        "prometheus": prom_version,
        "surge": pkg("surge"),
        "kopf": pkg("kopf"),
        "kubernetes_client": pkg("kubernetes"),
        "python": platform.python_version(),
    }
