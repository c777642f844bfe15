"""`surge run` as shipped: the real entry point in its own process, against the real control plane.

The other operator tests drive the handlers through kopf's test runner in the test process; this one starts
the console entry point with the flags the manager Deployment uses, so start-up (login, malloc tuning,
logging set-up), the liveness and /metrics endpoints and a clean SIGTERM shutdown are covered too. It works in
a namespace of its own ("cli-*"), which the session's in-process operator does not watch.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.conftest import Testbed, fresh_namespace
from tests.integration.test_operator import cpu_policy, create_policy, load_all, replicas, start_pods
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return response.status, response.read().decode()


@pytest.fixture
def cli_namespace(k8s_api: client.ApiClient) -> Iterator[str]:
    yield from fresh_namespace(k8s_api, "cli-")


def test_surge_run_scales_serves_health_and_metrics_and_stops_cleanly(
    testbed: Testbed, crd: Path, k8s_api: client.ApiClient, cli_namespace: str, tmp_path: Path
) -> None:
    ns = cli_namespace
    start_pods(k8s_api, ns, "web", 2, cpu_request="100m")
    load_all(k8s_api, ns, "web", "200m")
    create_policy(k8s_api, ns, "web", cpu_policy("web"))

    metrics_port, health_port = _free_port(), _free_port()
    log = tmp_path / "operator.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "surge.cli", "run",
                "--kubeconfig", str(testbed.kubeconfig),
                "--namespace", ns,
                "--prometheus-url", testbed.prometheus_url,
                "--metrics-port", str(metrics_port),
                "--liveness", f"http://127.0.0.1:{health_port}/healthz",
                "--log-format", "json",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "SURGE_WATCH_TIMEOUT": "10"},
        )  # fmt: skip
        try:
            wait_until(lambda: replicas(k8s_api, ns, "web") > 2, timeout=90, what="scale-up by `surge run`")
            status, _ = _get(f"http://127.0.0.1:{health_port}/healthz")
            assert status == 200
            _, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
            counts = [
                float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith("surge_tick_seconds_count")
            ]
            assert sum(counts) >= 1, text
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "the operator logged nothing"
    records = [json.loads(line) for line in lines]  # --log-format json: every line is one JSON object
    assert any("SIGTERM" in r.get("message", "") for r in records)
