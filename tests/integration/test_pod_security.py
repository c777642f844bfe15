"""The operator's Deployment passes the restricted Pod Security Standard, as the API server enforces it.

Each install's manager Deployment (manifests/default, manifests/namespaced, manifests/kind) is sent as a
server-side dry run into a fresh namespace labelled `pod-security.kubernetes.io/enforce=restricted` (and
`warn`, which makes the API server name every violation of a pod template on stderr). A control pod
template that breaks the level proves the namespace really enforces it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Testbed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INSTALLS = ("default", "namespaced", "kind")
Obj = dict[str, Any]


def _manager(testbed: Testbed, install: str) -> Obj:
    docs = yaml.safe_load_all(testbed.kubectl("kustomize", str(ROOT / "manifests" / install)))
    (dep,) = [
        d
        for d in docs
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "surge-controller-manager"
    ]
    return dict(dep)


@pytest.fixture
def restricted_namespace(testbed: Testbed) -> Iterator[str]:
    name = f"psa-{uuid.uuid4().hex[:8]}"
    testbed.kubectl("create", "namespace", name)
    try:
        testbed.kubectl(
            "label", "namespace", name,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
            "pod-security.kubernetes.io/warn=restricted",
        )  # fmt: skip
        yield name
    finally:
        testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _dry_run(testbed: Testbed, obj: Obj, namespace: str) -> subprocess.CompletedProcess[str]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = namespace
    return subprocess.run(
        [
            str(testbed.bin_dir / "kubectl"), "--kubeconfig", str(testbed.kubeconfig),
            "apply", "--server-side", "--dry-run=server", "--validate=strict",
            "--field-manager=surge-psa-test", "-f", "-",
        ],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("install", INSTALLS)
def test_manager_passes_the_restricted_level(
    testbed: Testbed, restricted_namespace: str, install: str
) -> None:
    proc = _dry_run(testbed, _manager(testbed, install), restricted_namespace)
    assert proc.returncode == 0, proc.stderr
    assert "PodSecurity" not in proc.stderr, proc.stderr
    assert "violate" not in proc.stderr, proc.stderr
    assert "(server dry run)" in proc.stdout


def test_the_namespace_really_enforces_restricted(testbed: Testbed, restricted_namespace: str) -> None:
    """Control: the same Deployment with privilege escalation allowed is refused a warning-free pass."""
    dep = _manager(testbed, "default")
    dep["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    proc = _dry_run(testbed, dep, restricted_namespace)
    # Workloads are admitted with a warning (pods would be refused); the warning names the violation.
    assert "allowPrivilegeEscalation" in proc.stderr, proc.stderr


def test_image_user_is_the_pod_user(testbed: Testbed) -> None:
    """The Dockerfile's USER is the runAsUser/runAsGroup of every install's manager."""
    users = [
        line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    ]
    assert users == ["65532:65532"]
    for install in INSTALLS:
        pod = _manager(testbed, install)["spec"]["template"]["spec"]
        sc = pod["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (65532, 65532, True), install
