"""The sim data plane against the real local control plane: a 3-replica Deployment on KWOK nodes, a short
demand surge beyond 3 pods' capacity. Proves that the usage annotations reach metrics.k8s.io, that Prometheus
scrapes the per-pod game metrics, that an in-place resize raises a pod's capacity, and that the run's outputs
exist. Everything polls real state with a deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from surge_game import vocabulary as v

from tests.conftest import Testbed
from tests.support.wait import wait_until
from tests.support.workloads import USAGE_CPU, deployment, ready_pods

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PER_POD = v.capacity_players(250, v.DEFAULT_PLAYERS_PER_CORE)  # 50 players on a 250m pod


def _millicores(q: str) -> float:
    for suffix, scale in (("n", 1e-6), ("u", 1e-3), ("m", 1.0)):
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * scale
    return float(q) * 1000


def _prom(testbed: Testbed, query: str) -> list[dict[str, Any]]:
    url = f"{testbed.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_sim_run_drives_usage_metrics_and_reports_unserved(
    testbed: Testbed, k8s_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    apps, core = client.AppsV1Api(k8s_api), client.CoreV1Api(k8s_api)
    apps.create_namespaced_deployment(
        namespace, deployment("arena", replicas=3, cpu_request="250m", container="arena")
    )
    pods = wait_until(
        lambda: len(p := ready_pods(core, namespace, "arena")) == 3 and p, timeout=60, what="3 Ready pods"
    )
    names = sorted(p.metadata.name for p in pods)

    # 60 players, then a surge to 400 (3 pods hold 150), a plateau, a decay: 50 s in all.
    trace = tmp_path / "surge.csv"
    trace.write_text("seconds,players\n0,60\n5,60\n15,400\n40,400\n50,100\n")
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "surge_loadgen", "run", "--plane", "sim",
            "--namespace", namespace, "--deployment", "arena", "--kubeconfig", str(testbed.kubeconfig),
            "--prometheus-targets", str(testbed.targets_dir),
            "--trace", str(trace), "--out", str(out), "--progress-every", "5",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    sd_file = testbed.targets_dir / f"surge-loadgen-{namespace}-arena.json"
    try:
        # The loadgen registers its loopback exporter with Prometheus.
        target = wait_until(
            lambda: sd_file.exists() and json.loads(sd_file.read_text())[0]["targets"][0],
            timeout=30,
            what="the file_sd registration",
        )
        assert str(target).startswith("127.0.0.1:")
        metrics_url = f"http://{target}/metrics"

        # Every pod gets usage annotations, and metrics-server reports them through metrics.k8s.io.
        wait_until(
            lambda: all(
                USAGE_CPU in (p.metadata.annotations or {}) for p in ready_pods(core, namespace, "arena")
            ),
            timeout=30,
            what="usage annotations on every pod",
        )

        def metrics_api_reports_usage() -> bool:
            raw = client.CustomObjectsApi(k8s_api).list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", namespace, "pods"
            )
            usage = {
                i["metadata"]["name"]: _millicores(i["containers"][0]["usage"]["cpu"]) for i in raw["items"]
            }
            annotated = {
                p.metadata.name: _millicores(p.metadata.annotations[USAGE_CPU])
                for p in ready_pods(core, namespace, "arena")
            }
            # Both above the 10m idle base: players were placed and the usage made it through KWOK's
            # ClusterResourceUsage and metrics-server (the exact value may have moved on since).
            return set(usage) >= set(names) and all(usage[n] > 20 and annotated[n] > 20 for n in names)

        wait_until(metrics_api_reports_usage, timeout=90, what="metrics.k8s.io to report the simulated usage")

        # Prometheus scrapes one players-online series per pod.
        def scraped() -> list[str]:
            result = _prom(testbed, f'{v.PLAYERS_ONLINE}{{namespace="{namespace}"}}')
            return sorted(r["metric"]["pod"] for r in result)

        assert wait_until(lambda: scraped() == names and names, timeout=60, what="Prometheus series per pod")

        # An in-place resize (pods/resize) to 500m doubles that pod's capacity in the simulation.
        resize = {"spec": {"containers": [{"name": "arena", "resources": {"requests": {"cpu": "500m"}}}]}}
        testbed.kubectl(
            "-n", namespace, "patch", "pod", names[0], "--subresource", "resize", "--type", "strategic",
            "-p", json.dumps(resize),
        )  # fmt: skip
        wanted = f'{v.CAPACITY_PLAYERS}{{namespace="{namespace}",pod="{names[0]}"}} {2 * PER_POD}'
        wait_until(lambda: wanted in _scrape(metrics_url), timeout=30, what="capacity to follow the resize")

        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
    assert proc.returncode == 0, stderr
    assert "[sim t=" in stdout
    assert not sd_file.exists(), "the file_sd registration must be removed at the end"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["plane"] == "sim"
    assert summary["peak_demand"] == 400
    assert summary["unserved_player_seconds"] > 0
    assert summary["peak_unserved"] >= 400 - 4 * PER_POD  # at most 3 pods + one resized pod's extra
    assert summary["rejected_joins"] > 0
    assert summary["replicas_max"] == 3
    assert 3 <= summary["api_writes"] <= summary["duration_s"] * 3 / 5 + 3  # <= 1 write / 5 s / pod
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "timeline.csv").read_text().splitlines()
    capacities = {int(r.split(",")[4]) for r in rows[1:]}
    assert {3 * PER_POD, 4 * PER_POD} <= capacities  # before and after the resize
