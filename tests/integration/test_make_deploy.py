"""`make deploy` / `make undeploy` against the embedded cluster, through the Makefile's own kubectl wiring.

manifests/default itself would put the CRDs, a ClusterRole and surge-system on the shared cluster, and
undeploy would delete the CRDs under every other test; so the test deploys an overlay of the same RBAC and
manager (DEPLOY_KUSTOMIZE) into its own namespace with its own name prefix.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.conftest import ROOT, Testbed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _make(target: str, overlay: Path, testbed: Testbed) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(testbed.kubeconfig)}
    return subprocess.run(
        ["make", "--no-print-directory", target, f"DEPLOY_KUSTOMIZE={overlay}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _exists(read: object, *args: str) -> bool:
    try:
        read(*args)  # type: ignore[operator]
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_make_deploy_applies_the_operator_and_undeploy_removes_it(
    testbed: Testbed, k8s_api: client.ApiClient, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix = f"mkd{suffix}-"
    # The manager's Namespace object becomes this one: deploy creates it, undeploy deletes it.
    deploy_namespace = f"mkd-{suffix}"
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    up = os.path.relpath(ROOT / "manifests", overlay)  # kustomize refuses absolute resource paths
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {deploy_namespace}\nnamePrefix: {prefix}\n"
        f"resources:\n- {up}/rbac\n- {up}/manager\n"
    )
    apps, rbac = client.AppsV1Api(k8s_api), client.RbacAuthorizationV1Api(k8s_api)
    name = f"{prefix}controller-manager"
    try:
        done = _make("deploy", overlay, testbed)
        assert done.returncode == 0, done.stderr
        deployment = apps.read_namespaced_deployment(name, deploy_namespace)
        assert deployment.spec.replicas == 2
        assert deployment.spec.template.spec.service_account_name == f"{prefix}controller-manager"
        assert _exists(rbac.read_cluster_role, f"{prefix}manager-role")

        done = _make("undeploy", overlay, testbed)
        assert done.returncode == 0, done.stderr
        assert not _exists(apps.read_namespaced_deployment, name, deploy_namespace)
        assert not _exists(rbac.read_cluster_role, f"{prefix}manager-role")
        again = _make("undeploy", overlay, testbed)  # --ignore-not-found: nothing left is not an error
        assert again.returncode == 0, again.stderr
    finally:
        for cluster_scoped in ("clusterrole", "clusterrolebinding"):
            testbed.kubectl(
                "delete", cluster_scoped, f"{prefix}manager-role", f"{prefix}manager-rolebinding",
                "--ignore-not-found", check=False,
            )  # fmt: skip
        testbed.kubectl(
            "delete", "namespace", deploy_namespace, "--ignore-not-found", "--wait=false", check=False
        )
