"""Deletions never wait for the operator: no finalizer on policies, in every namespace mode, running or not.

Each case starts `surge run` as shipped in its own process (all namespaces, a pattern, an exact name), lets it
act on a policy, checks the policy carries no finalizer, and deletes the namespace: the API server must finish
within seconds. A policy carrying the finalizer of earlier versions loses it as soon as the operator sees it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import Testbed
from tests.integration.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    cpu_policy,
    create_policy,
    load_all,
    policy_status,
    start_pods,
)
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LEGACY_FINALIZER = "autoscaling.surge.dev/finalizer"


def _new_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        timeout=30,
        what=f"default service account in {name}",
    )
    return name


def _namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as exc:
        return exc.status == 404
    return False


def _finalizers(api: client.ApiClient, ns: str, name: str) -> list[str]:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    return list(obj["metadata"].get("finalizers") or [])


@pytest.fixture
def operator_process(testbed: Testbed, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _start(testbed: Testbed, log: Path, namespace_args: list[str]) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "surge.cli", "run",
                "--kubeconfig", str(testbed.kubeconfig),
                "--prometheus-url", testbed.prometheus_url,
                *namespace_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "SURGE_WATCH_TIMEOUT": "10"},
        )  # fmt: skip


@pytest.mark.parametrize("mode", ["all", "pattern", "exact"])
def test_deleting_a_namespace_with_policies_completes_while_the_operator_runs(
    mode: str,
    testbed: Testbed,
    crd: Path,
    k8s_api: client.ApiClient,
    operator_process: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(k8s_api)
    ns = _new_namespace(core, "del-")
    start_pods(k8s_api, ns, "web", 2, cpu_request="100m")
    load_all(k8s_api, ns, "web", "50m")
    # The legacy finalizer stands for a policy created under an earlier version of the operator.
    create_policy(k8s_api, ns, "web", cpu_policy("web"))
    client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "web", {"metadata": {"finalizers": [LEGACY_FINALIZER]}}
    )
    args = {"all": [], "pattern": ["--namespace", "del-*"], "exact": ["--namespace", ns]}[mode]
    log = tmp_path / f"operator-{mode}.log"
    operator_process.append(_start(testbed, log, args))

    wait_until(
        lambda: policy_status(k8s_api, ns, "web").get("observedGeneration"),
        timeout=90,
        what=f"a status from the operator ({mode}); log: {log}",
    )
    wait_until(lambda: _finalizers(k8s_api, ns, "web") == [], timeout=30, what="the legacy finalizer removed")

    started = time.monotonic()
    core.delete_namespace(ns, propagation_policy="Background")
    wait_until(lambda: _namespace_gone(core, ns), timeout=60, what=f"namespace {ns} deleted ({mode})")
    took = time.monotonic() - started
    assert operator_process[-1].poll() is None, log.read_text()[-3000:]
    assert took < 60
    print(f"namespace deletion with the operator running ({mode}): {took:.1f} s")


def test_policies_delete_at_once_with_the_operator_stopped(
    testbed: Testbed,
    crd: Path,
    k8s_api: client.ApiClient,
    operator_process: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(k8s_api)
    ns = _new_namespace(core, "del-")
    start_pods(k8s_api, ns, "web", 1, cpu_request="100m")
    create_policy(k8s_api, ns, "web", cpu_policy("web"))
    create_policy(k8s_api, ns, "other", cpu_policy("web"))
    proc = _start(testbed, tmp_path / "operator.log", ["--namespace", ns])
    operator_process.append(proc)
    wait_until(
        lambda: policy_status(k8s_api, ns, "web").get("observedGeneration"), timeout=90, what="operator acted"
    )
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.wait(timeout=10)

    custom = client.CustomObjectsApi(k8s_api)
    started = time.monotonic()
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "web")
    wait_until(
        lambda: not any(p["metadata"]["name"] == "web" for p in custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL)["items"]),
        timeout=10,
        what="the policy deleted without an operator",
    )  # fmt: skip
    core.delete_namespace(ns, propagation_policy="Background")
    wait_until(lambda: _namespace_gone(core, ns), timeout=60, what="namespace deleted without an operator")
    print(f"policy + namespace deletion with the operator stopped: {time.monotonic() - started:.1f} s")
