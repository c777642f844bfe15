"""Where the running test bed is: what `testbed/cluster.sh env` prints, read in one place."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CLUSTER_SH = REPO / "testbed" / "cluster.sh"


@dataclass(frozen=True)
class TestbedEnv:
    """Kubeconfig, Prometheus and binaries of the cluster named by $SURGE_CLUSTER_NAME (default: surge)."""

    __test__ = False  # not a test class, despite the name

    name: str
    kubeconfig: Path
    prometheus_url: str
    targets_dir: Path  # Prometheus file_sd folder: exporters register here
    bin_dir: Path
    prometheus_tenant_url: str = ""  # prom-label-proxy in front of Prometheus (namespace enforced)


def read_env(defaults: Mapping[str, str] | None = None) -> TestbedEnv:
    """Runs `testbed/cluster.sh env` (does not start anything).

    `defaults` are SURGE_* settings used unless the environment sets them, e.g. the bench's own cluster
    name and Prometheus port.
    """
    env = {**(defaults or {}), **os.environ}
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "env"], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return TestbedEnv(
        name=env.get("SURGE_CLUSTER_NAME", "surge"),
        kubeconfig=Path(values["SURGE_KUBECONFIG"]),
        prometheus_url=values["SURGE_PROMETHEUS_URL"],
        targets_dir=Path(values["SURGE_PROMETHEUS_TARGETS"]),
        bin_dir=Path(values["SURGE_BIN_DIR"]),
        prometheus_tenant_url=values.get("SURGE_PROMETHEUS_TENANT_URL", ""),
    )
