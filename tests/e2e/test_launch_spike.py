"""The launch-day scenario end to end: operator, game fleet, simulated players, Prometheus, metrics-server.

Two fleets replay the same compressed launch-spike side by side (same cluster, same time): one whose policy
is Active, one whose identical policy is DryRun. The DryRun fleet shows what the scenario does without
Surge, so the comparison proves the operator, not the scenario, kept the players served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client

from tests.conftest import ROOT, Testbed
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DEMO = ROOT / "manifests" / "demo" / "arena.yaml"
TIME_SCALE = "0.2"  # the 16-minute trace in a bit over 3 minutes
# Stated bound: with the Buffer policy at most 10% of the demanded player-seconds go unserved
# (measured about 4.5% on the 2-core test machine), and DryRun leaves at least 5x as many unserved.
MAX_UNSERVED_FRACTION = 0.10
MIN_DRY_RUN_RATIO = 5.0


def _fleet(namespace: str, mode: str) -> list[dict[str, Any]]:
    text = DEMO.read_text().replace('namespace="games"', f'namespace="{namespace}"')
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "AutoScalePolicy":
            doc["spec"]["mode"] = mode
    return docs


@pytest.fixture
def fleets(k8s_api: client.ApiClient) -> Iterator[dict[str, str]]:
    core = client.CoreV1Api(k8s_api)
    names = {mode: f"e2e-{mode.lower()}-{uuid.uuid4().hex[:6]}" for mode in ("Active", "DryRun")}
    for name in names.values():
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield names
    for name in names.values():
        core.delete_namespace(name, propagation_policy="Background")


def _apply(testbed: Testbed, docs: list[dict[str, Any]]) -> None:
    testbed.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(docs))


def _replay(testbed: Testbed, namespace: str, out: Path) -> subprocess.Popen[str]:
    env = {
        "SURGE_KUBECONFIG": str(testbed.kubeconfig),
        "SURGE_PROMETHEUS_TARGETS": str(testbed.targets_dir),
        "PATH": "/usr/bin:/bin",
    }
    cmd = [sys.executable, "-m", "surge_loadgen", "run", "--plane", "sim", "--namespace", namespace]
    cmd += [
        "--deployment",
        "arena",
        "--scenario",
        "launch-spike",
        "--time-scale",
        TIME_SCALE,
        "--out",
        str(out),
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_surge_keeps_players_served_through_a_launch_spike_and_gives_capacity_back(
    operator: KopfRunner, testbed: Testbed, k8s_api: client.ApiClient, fleets: dict[str, str], tmp_path: Path
) -> None:
    apps = client.AppsV1Api(k8s_api)
    for mode, ns in fleets.items():
        _apply(testbed, _fleet(ns, mode))
    for ns in fleets.values():
        wait_until(
            lambda ns=ns: apps.read_namespaced_deployment_status("arena", ns).status.ready_replicas == 2,
            timeout=60,
            what=f"arena ready in {ns}",
        )

    runs = {mode: _replay(testbed, ns, tmp_path / mode) for mode, ns in fleets.items()}
    logs = {mode: proc.communicate(timeout=600)[0] for mode, proc in runs.items()}
    for mode, proc in runs.items():
        assert proc.returncode == 0, f"{mode} replay failed:\n{logs[mode][-3000:]}"

    summaries = {mode: json.loads((tmp_path / mode / "summary.json").read_text()) for mode in runs}
    active, dry = summaries["Active"], summaries["DryRun"]
    for mode in runs:
        png = (tmp_path / mode / "timeline.png").read_bytes()
        assert png.startswith(b"\x89PNG"), "timeline.png must be a PNG"
        assert (tmp_path / mode / "timeline.csv").stat().st_size > 0

    # Surge added capacity before the players were turned away ...
    assert active["unserved_fraction"] <= MAX_UNSERVED_FRACTION, active
    assert active["replicas_max"] >= 15, "1,500 players at 100 per pod need at least 15 pods"
    assert active["time_to_cover_90_s"] is not None
    # ... and gave it back after the decay.
    assert active["scale_downs"] >= 1
    assert active["replicas_final"] <= active["replicas_max"] / 2, active
    # The identical DryRun policy changed nothing, and its players paid for it.
    assert dry["replicas_max"] == 2, dry
    assert dry["scale_actions"] == 0, dry
    assert dry["unserved_player_seconds"] >= MIN_DRY_RUN_RATIO * active["unserved_player_seconds"], (
        active,
        dry,
    )

    status = client.CustomObjectsApi(k8s_api).get_namespaced_custom_object(
        "autoscaling.surge.dev", "v1alpha1", fleets["Active"], "autoscalepolicies", "arena"
    )["status"]
    assert status["lastDecision"]["reason"], status
