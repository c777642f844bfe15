"""The vertical demo's fleet (manifests/demo/arena-vertical.yaml, `make demo-vertical`): accepted; it sizes.

- Both objects pass a server-side dry run (CRD schema and CEL, strict field validation) in a fresh namespace:
  quick, nothing is stored, no operator needed.
- The operator's own parser reads the policy as the manifest's comments say: InPlace, a 30 s half-life, cpu
  only, requests only, and horizontal's queries name the namespace scripts/demo-vertical.sh deploys into.
- The recommender alone (pure decision code, no cluster), fed the demo's trace (read from the script) through
  the sim plane's capacity and cost rules with one sample per pod every 10 s like metrics-server: the request
  rises while the pods are saturated and comes down within the trace's tail. The full demo is not run here
  (six minutes); `make demo-vertical` is.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from surge_game import vocabulary as v

from surge.api.spec import (
    BufferMetricSpec,
    ContainerPolicyMode,
    ControlledValues,
    PolicySpec,
    ResourceAmounts,
    UpdateMode,
    parse_policy_spec,
)
from surge.decision.model import ContainerResources, Observation, PodInfo, PodUsage
from surge.decision.vertical import VerticalState, vertical_step
from tests.conftest import Testbed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifests" / "demo" / "arena-vertical.yaml"
SCRIPT = ROOT / "scripts" / "demo-vertical.sh"
METRICS_RESOLUTION = 10.0  # seconds: metrics-server's --metric-resolution on the test bed


def _objects() -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(MANIFEST.read_text()) if o]


def _policy() -> PolicySpec:
    (policy,) = [o for o in _objects() if o["kind"] == "AutoScalePolicy"]
    return parse_policy_spec(policy["spec"])


def _script_namespace() -> str:
    match = re.search(r"^ns=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    assert match, "scripts/demo-vertical.sh sets no ns="
    return match.group(1)


def _script_trace() -> list[tuple[float, float]]:
    """The default trace scripts/demo-vertical.sh writes (its heredoc)."""
    match = re.search(r"<<'YAML'\n(.*?)\nYAML\n", SCRIPT.read_text(), re.DOTALL)
    assert match, "scripts/demo-vertical.sh has no trace heredoc"
    return [(float(t), float(n)) for t, n in yaml.safe_load(match.group(1))["points"]]


def _demand(points: list[tuple[float, float]], t: float) -> float:
    for (t0, n0), (t1, n1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return n0 + (n1 - n0) * (t - t0) / (t1 - t0)
    return points[-1][1]


def test_server_side_dry_run_accepts_the_fleet_and_its_policy(
    testbed: Testbed, crd: Path, namespace: str
) -> None:
    proc = subprocess.run(
        [
            str(testbed.bin_dir / "kubectl"),
            "--kubeconfig",
            str(testbed.kubeconfig),
            "-n",
            namespace,
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            str(MANIFEST),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"server-side dry run refused {MANIFEST.name}:\n{proc.stderr}"
    assert "deployment.apps/arena serverside-applied (server dry run)" in proc.stdout, proc.stdout
    assert "autoscalepolicy.autoscaling.surge.dev/arena serverside-applied (server dry run)" in proc.stdout, (
        proc.stdout
    )
    assert "Warning" not in proc.stderr, proc.stderr


def test_policy_sizes_in_place_on_cpu_and_counts_the_demo_namespace() -> None:
    spec = _policy()
    vertical, horizontal = spec.vertical, spec.horizontal
    assert vertical is not None
    assert horizontal is not None
    assert vertical.update_mode is UpdateMode.IN_PLACE
    assert 1.0 <= vertical.half_life <= 60.0, "a demo-length half-life (seconds to a minute), not 24h"
    policy = vertical.policy_for("arena")
    assert policy.mode is ContainerPolicyMode.AUTO
    assert policy.controlled_resources == ("cpu",)
    assert policy.controlled_values is ControlledValues.REQUESTS_ONLY
    (buffer,) = horizontal.metrics
    assert isinstance(buffer, BufferMetricSpec)
    namespaces = set(re.findall(r'namespace="([^"]+)"', buffer.buffer.used_query))
    assert namespaces == {_script_namespace()}, "the queries must count the demo's own pods"


def test_requests_follow_the_demo_trace_up_and_down() -> None:
    spec = _policy()
    vertical, horizontal = spec.vertical, spec.horizontal
    assert vertical is not None
    assert horizontal is not None
    (buffer,) = horizontal.metrics
    assert isinstance(buffer, BufferMetricSpec)
    per_replica = float(buffer.buffer.capacity_per_replica or 0)
    (deployment,) = [o for o in _objects() if o["kind"] == "Deployment"]
    template_cpu = v.parse_cpu_millis(
        deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    )
    template = [ContainerResources("arena", ResourceAmounts(cpu=template_cpu / 1000))]
    cost = v.CostModel()
    points = _script_trace()
    state, request = VerticalState(), template_cpu / 1000
    history: list[tuple[float, float, float]] = []  # (t, demand, request in cores)
    t = 0.0
    while t <= points[-1][0]:
        demand = _demand(points, t)
        # Horizontal's count (Buffer: used + 20% at capacityPerReplica), clamped like the policy.
        pods = min(
            max(math.ceil(demand * 1.2 / per_replica), horizontal.min_replicas), horizontal.max_replicas
        )
        served = min(demand / pods, cost.capacity(request * 1000))  # a full pod serves no more
        usage = cost.cpu_millis(round(served)) / 1000
        obs = Observation(
            current_replicas=pods,
            pods=[PodInfo(f"p{i}", requests={"arena": ResourceAmounts(cpu=request)}) for i in range(pods)],
            pod_metrics={f"p{i}": PodUsage(t, {"arena": ResourceAmounts(cpu=usage)}) for i in range(pods)},
            containers=template,
        )
        outcome = vertical_step(state, vertical, obs, t)
        state = outcome.state
        if outcome.resizes and outcome.resizes[0].new_requests.cpu is not None:
            request = outcome.resizes[0].new_requests.cpu  # InPlace: every pod gets the target
        history.append((t, demand, request))
        t += METRICS_RESOLUTION

    peak_start = next(t for t, n in points if n == max(n for _, n in points))
    peak_end = max(t for t, n in points if n == max(n for _, n in points))
    start = history[0][2]
    at_peak = max(r for t, _, r in history if t <= peak_end)
    end = history[-1][2]
    rise = next(t for t, _, r in history if r >= 0.9 * at_peak)
    assert at_peak >= 4 * start, f"requests should grow with a 15x spike: {start} -> {at_peak}"
    assert rise - peak_start <= 60, f"the request reached 90% of its peak only {rise - peak_start} s in"
    assert end <= 0.5 * at_peak, f"the request should come down in the tail: {at_peak} -> {end}"
    # And not below what the tail's load needs (pods stay big enough for their players).
    tail_demand = history[-1][1] / horizontal.min_replicas
    assert cost.capacity(end * 1000) >= tail_demand, (end, tail_demand)
