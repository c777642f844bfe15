"""`surge explain` and `kubectl surge explain` against a policy the real operator is driving."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

from tests.conftest import ROOT, Testbed
from tests.integration.test_operator import create_policy, policy_status, replicas, start_pods
from tests.support.exporter import loopback_series
from tests.support.wait import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BIN = ROOT / ".venv" / "bin"
INTERVAL = 5  # long enough that the next evaluation's time is on record, short enough for a quick test


@pytest.fixture
def players(testbed: Testbed, namespace: str) -> Iterator[str]:
    """surge_test_players{namespace=...} 450 on loopback, scraped by the test bed's Prometheus."""
    series = f'surge_test_players{{namespace="{namespace}"}} 450\n'
    with loopback_series(testbed.targets_dir, f"explain-{namespace}", series):
        yield f'sum(surge_test_players{{namespace="{namespace}"}})'


def _policy(target: str, query: str, interval: int = INTERVAL) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "interval": f"{interval}s",
        "horizontal": {
            "minReplicas": 1,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Prometheus",
                    "prometheus": {"query": query, "target": {"type": "AverageValue", "averageValue": "100"}},
                }
            ],
        },
    }


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_explain_tells_the_decision_the_metric_and_the_next_evaluation(
    operator: KopfRunner,
    k8s_api: client.ApiClient,
    namespace: str,
    kubeconfig: Path,
    players: str,
    testbed: Testbed,
) -> None:
    start_pods(k8s_api, namespace, "arena", 1)
    create_policy(k8s_api, namespace, "players", _policy("arena", players))
    # 450 players at 100 per replica -> 5; once there, the next tick decides "keep 5" and the status rests.
    wait_until(lambda: replicas(k8s_api, namespace, "arena") == 5, timeout=60, what="5 replicas")
    status = wait_until(
        lambda: (
            (s := policy_status(k8s_api, namespace, "players")).get("lastDecision", {}).get("from") == 5
            and s["lastDecision"]["to"] == 5
            and s
        ),
        timeout=3 * INTERVAL,
        what="a steady decision at 5",
    )
    metric = status["currentMetrics"][0]

    text = _run([str(BIN / "surge"), "explain", "players", "-n", namespace, "--kubeconfig", str(kubeconfig)])
    assert text.returncode == 0, text.stderr
    out = text.stdout
    print(out)  # shown with -rP, and with the failure's captured output
    assert (
        f"AutoScalePolicy {namespace}/players -> Deployment/arena  (mode Active, interval {INTERVAL}s)" in out
    )
    assert "Replicas: current 5, desired 5 (min 1, max 10)" in out
    assert "to keep 5 replica(s)." in out
    assert f"prometheus-0 (Prometheus): value {metric['value']}, target 100 -> proposes 5 replica(s)" in out
    assert "Conditions:\n  " in out
    assert "Ready=True Reconciled" in out
    assert "SuccessfulRescale" in out  # the scale-up's Event
    assert "Next evaluation: about " in out

    # kubectl runs `kubectl-surge` from PATH for `kubectl surge ...`: the plugin, through real kubectl.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    before = time.time()
    plugin = _run(
        [
            str(testbed.bin_dir / "kubectl"),
            "surge",
            "explain",
            "players",
            "-n",
            namespace,
            "--kubeconfig",
            str(kubeconfig),
            "-o",
            "json",
        ],
        env=env,
    )
    assert plugin.returncode == 0, plugin.stderr
    data = json.loads(plugin.stdout)
    assert data["metrics"] == [
        {
            "name": "prometheus-0",
            "type": "Prometheus",
            "value": metric["value"],
            "target": "100",
            "proposedReplicas": 5,
            "error": "",
            "winner": True,
        }
    ]
    assert data["decision"]["from"] == data["decision"]["to"] == 5
    assert data["replicas"]["current"] == 5
    assert "SuccessfulRescale" in [e["reason"] for e in data["events"]]
    last = _epoch(data["lastEvaluation"]["time"])
    nxt = data["nextEvaluation"]
    assert nxt["intervalSeconds"] == INTERVAL
    assert nxt["time"] is not None, nxt
    due = _epoch(nxt["time"])
    # The next tick is due after the last one on record, and at most one jittered interval from now.
    assert due > last
    assert due - before <= INTERVAL * 1.05 + nxt["uncertaintySeconds"] + 1


def test_explain_of_a_missing_policy_is_one_line_and_exit_code_1(
    crd: Path, namespace: str, kubeconfig: Path
) -> None:
    proc = _run([str(BIN / "surge"), "explain", "nothing", "-n", namespace, "--kubeconfig", str(kubeconfig)])
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: AutoScalePolicy {namespace}/nothing not found"
    assert proc.stdout == ""


class _Players:
    """A loopback series whose value the test changes (registered with Prometheus through file_sd)."""

    def __init__(self, targets_dir: Path, namespace: str, value: int) -> None:
        self.value = value
        players = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f'surge_test_players{{namespace="{namespace}"}} {players.value}\n'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.sd_file = targets_dir / f"explain-hold-{namespace}.json"
        target = f"127.0.0.1:{self.server.server_address[1]}"
        self.sd_file.write_text(json.dumps([{"targets": [target], "labels": {"job": self.sd_file.stem}}]))
        self.query = f'sum(surge_test_players{{namespace="{namespace}"}})'

    def close(self) -> None:
        self.sd_file.unlink(missing_ok=True)
        self.server.shutdown()


WINDOW = 20


def test_explain_says_until_when_the_scale_down_window_holds_and_the_hold_ends_then(
    operator: KopfRunner, k8s_api: client.ApiClient, namespace: str, kubeconfig: Path, testbed: Testbed
) -> None:
    players = _Players(testbed.targets_dir, namespace, 450)
    try:
        start_pods(k8s_api, namespace, "arena", 1)
        spec = _policy("arena", players.query, interval=1)
        spec["horizontal"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": WINDOW}}
        create_policy(k8s_api, namespace, "hold", spec)
        wait_until(lambda: replicas(k8s_api, namespace, "arena") == 5, timeout=60, what="5 replicas")
        players.value = 150  # -> 2 replicas, held at 5 by the window for up to 20 s after the last 450
        status = wait_until(
            lambda: (
                (s := policy_status(k8s_api, namespace, "hold")).get("lastDecision", {}).get("limitedBy")
                == "ScaleDownStabilized"
                and s
            ),
            timeout=30,
            what="a hold by the scale-down window",
        )
        hold = status["lastDecision"]["holdUntil"]
        assert 0 < _epoch(hold) - time.time() <= WINDOW + 1

        proc = _run(
            [
                str(BIN / "surge"),
                "explain",
                "hold",
                "-n",
                namespace,
                "--kubeconfig",
                str(kubeconfig),
                "-o",
                "json",
            ]
        )
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["decision"]["holdUntil"] == hold
        assert data["whyNothing"][0].startswith(
            f"Held by the scale-down stabilization window ({WINDOW}s): the highest recommendation of the "
            f"window keeps the count at 5 until {hold}"
        )
        assert data["metrics"][0]["proposedReplicas"] == 2

        # The field tells the truth: the count moves once the hold ends, not before.
        wait_until(lambda: replicas(k8s_api, namespace, "arena") < 5, timeout=WINDOW + 15, what="scale-down")
        moved = time.time()
        assert moved >= _epoch(hold) - 1, (moved, hold)  # RFC 3339 whole seconds
    finally:
        players.close()
